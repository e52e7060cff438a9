"""jaxsym: statistics of symmetry breaking in neural-network initialisation.

Importing the package is cheap and does not import JAX, so that the NumPy oracles in
:mod:`jaxsym.theory` stay JAX-free. The JAX modules are imported on first use:

>>> import jaxsym
>>> from jaxsym import nn, network   # these import JAX
>>> ds = jaxsym.load("runs/example")  # a finished run's results (xarray.Dataset)
"""

__version__ = "0.1.0"

__all__ = ["__version__", "load"]


def __getattr__(name):
    """Lazy top-level API: ``jaxsym.load(run_dir)`` -> the run's ``xarray.Dataset``; the
    submodules (``jaxsym.store``, ``jaxsym.sweep``, ...) import on first attribute access."""
    if name == "load":
        from jaxsym.store import load

        return load
    import importlib
    import importlib.util

    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'jaxsym' has no attribute {name!r}")
