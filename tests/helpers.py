"""Tiny shared test helpers (the optax habit: one module, no heavy dependency)."""

import jax
import numpy as np


def assert_trees_all_close(actual, expected, *, rtol, atol=0.0, err_msg=""):
    """``np.testing.assert_allclose`` leaf by leaf over two pytrees of the same structure."""
    leaves_a, tree_a = jax.tree.flatten(actual)
    leaves_e, tree_e = jax.tree.flatten(expected)
    assert tree_a == tree_e, f"tree structures differ: {tree_a} vs {tree_e}"
    for i, (a, e) in enumerate(zip(leaves_a, leaves_e)):
        np.testing.assert_allclose(
            np.asarray(a), np.asarray(e), rtol=rtol, atol=atol, err_msg=f"{err_msg} (leaf {i})")


def counting_traces(fn):
    """Wrap ``fn`` so that ``wrapped.traces`` counts how often JAX traced it.

    A jitted function is traced exactly once per compilation (per new static signature), so
    ``jax.jit(counting_traces(f))`` followed by calls with new *values* of the same shapes must
    leave ``traces == 1`` (the optax / chex ``assert_max_traces`` idea).
    """

    def wrapped(*args, **kwargs):
        wrapped.traces += 1
        return fn(*args, **kwargs)

    wrapped.traces = 0
    return wrapped
