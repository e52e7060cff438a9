"""jaxsym: statistics of symmetry breaking in neural-network initialisation.

Importing the package is cheap and does not import JAX, so that the NumPy oracles in
:mod:`jaxsym.theory` stay JAX-free. The JAX modules are imported on first use:

>>> import jaxsym
>>> from jaxsym.core import nn, network   # these import JAX
>>> ds = jaxsym.run("experiments/example.toml", seeds=4)   # train (or resume) -> xarray.Dataset
>>> ds = jaxsym.load("runs/example")  # a finished run's results (xarray.Dataset)
>>> jaxsym.analysis.p_broken(ds)      # P(broken) per grid point with Wilson bounds
>>> jaxsym.report(ds)                 # REPORT.md + figures in runs/example/report
"""

from jaxsym._lazy import submodule_getattr

__version__ = "0.1.0"

__all__ = ["__version__", "run", "load", "report"]


def __getattr__(name):
    """Lazy top-level API: ``jaxsym.run`` / ``load`` / ``report`` (:mod:`jaxsym.api`); the
    submodules (``jaxsym.engine.store``, ``jaxsym.engine.run``, ...) import on first attribute access."""
    if name in ("run", "load", "report"):
        from jaxsym import api

        return getattr(api, name)
    return _submodule(name)


_submodule = submodule_getattr(__name__)
