"""Theory and oracles: analytic backprop and mean-field in NumPy float64 (no JAX); the saddle
analysis (Hessian at the collapsed point) uses JAX in float64."""
