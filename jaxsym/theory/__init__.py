"""Theory and oracles, written in NumPy float64 (no JAX): analytic backprop, mean-field, saddle."""
