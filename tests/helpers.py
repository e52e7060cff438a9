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


def xor_network(spec, sigma_b, seed=0, **knobs):
    """The records of ONE constant-W network of ``spec`` on a 64-row xor task (jitted
    ``run_network``; learning rate 0.5, weight value 1, the optional knobs in ``knobs``), as
    NumPy arrays."""
    from jaxsym.core.network import run_network
    from jaxsym.core.spec import WEIGHT_MODES
    from jaxsym.engine.runner import task_data
    from jaxsym.study import tasks

    values = dict(sigma_b=sigma_b, weight_value=1.0, W_std=1.0, learning_rate=0.5, eps=0.0,
                  noise=0.0, weight_mode=float(WEIGHT_MODES.index("constant")), **knobs)
    data = task_data(tasks.make_task("xor", seed=1, n_train=64, n_test=32), spec.loss)
    out = jax.jit(run_network, static_argnums=3)(jax.random.key(seed), values, data, spec)
    return jax.tree.map(np.asarray, out)


def xor_spec(*, width=17, steps=30, checkpoints=5, batch_size=0, optimizer="sgd", **flags):
    """The float64 tanh / bce :class:`NetworkSpec` ``(2, width, 1)`` of :func:`xor_network`
    (``flags``: the optional compiled-in features, e.g. ``decayed=True``)."""
    from jaxsym.core.spec import NetworkSpec, checkpoint_steps

    return NetworkSpec((2, width, 1), "tanh", "bce", optimizer, True, steps, batch_size,
                       "float64", checkpoint_steps(steps, checkpoints), 2, 1e-2, 1e-1, True,
                       **flags)
