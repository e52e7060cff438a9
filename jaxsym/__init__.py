"""jaxsym: statistics of symmetry breaking in neural-network initialisation.

Importing the package is cheap and does not import JAX, so that the NumPy oracles in
:mod:`jaxsym.theory` stay JAX-free. The JAX modules are imported on first use:

>>> import jaxsym
>>> from jaxsym import nn, inits   # these import JAX
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
