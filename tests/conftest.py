"""Test configuration in the equinox spirit: strict, and float64 available.

* ``jax_enable_x64``: float64 arrays exist, so the NumPy oracles can be matched to 1e-10.
  Library code passes explicit dtypes, so float32 paths are still tested where a test asks.
* ``jax_numpy_dtype_promotion = "strict"``: no silent float32 -> float64 (or int -> float) mixing.
* Warnings are errors (``filterwarnings = error`` in pyproject.toml).
* Rank promotion is left at JAX's default: ``z = a @ W.T + b`` broadcasts ``b: (n,)`` over the
  batch on purpose, exactly as the maths reads.
"""

import jax

jax.config.update("jax_enable_x64", True)

