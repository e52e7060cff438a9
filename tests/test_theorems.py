"""The thread's claims as exact theorems (float64).

1. Symmetry is preserved: identical units stay identical under SGD, momentum and Adam
   (bitwise, on every CPU kernel family: tests/test_exact_symmetry.py).
2. Unlock staircase: with W = 0 and random biases, layers unlock one per step from the top.
3. Total stall: W = 0, b = 0 and g(0) = 0: no weight ever moves.
4. Rank one: with W = 0 and random biases, each hidden layer's first update is rank one.

Theorem 1 holds bitwise, because jaxsym.core.dense computes every unit's products the same way;
its tests live in tests/test_exact_symmetry.py, next to the kernel-family checks.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsym.core import train
from jaxsym.core.spec import OPTIMIZERS
from jaxsym.theory import backprop

def _zero_weight_network(rng, depth, width=5, n_in=3, n_out=2):
    sizes = (n_in,) + (width,) * (depth - 1) + (n_out,)
    return [{"W": np.zeros((o, i)), "b": rng.uniform(0.5, 1.5, o) * rng.choice([-1, 1], o)}
            for i, o in zip(sizes[:-1], sizes[1:])]


def _sgd_staircase(depth, activation, steps, lr=0.5, seed=0):
    """Full-batch SGD from W = 0 with random biases: per step, the oracle gradients and params."""
    rng = np.random.RandomState(seed + depth)
    params = _zero_weight_network(rng, depth)
    x = rng.randn(16, 3)
    y = rng.randn(16, 2)
    jax_grad = jax.jit(jax.grad(lambda p: train.loss_of_params(p, x, y, activation, "mse")))
    history = []
    for _ in range(steps):
        _, grads = backprop.gradients(params, x, y, activation, "mse")
        auto = jax_grad(jax.tree.map(jnp.asarray, params))
        history.append((params, grads, auto))
        params = jax.tree.map(lambda p, g: p - lr * g, params, grads)
    history.append((params, None, None))
    return history


STAIRCASE_ACTIVATIONS = ["tanh", "sigmoid", "softplus", "gelu"]


@pytest.mark.parametrize("activation", STAIRCASE_ACTIVATIONS)
@pytest.mark.parametrize("depth", range(2, 9))
def test_unlock_staircase(depth, activation):
    """At step t the weight gradients of exactly the top t+1 layers are nonzero."""
    history = _sgd_staircase(depth, activation, steps=depth)
    for t, (_, grads, auto) in enumerate(history[:-1]):
        for layer in range(depth):
            unlocked = layer >= depth - 1 - t
            for g in (grads[layer]["W"], np.asarray(auto[layer]["W"])):
                if unlocked:  # exactly nonzero: the values shrink geometrically with depth
                    assert np.all(np.isfinite(g)) and np.any(g != 0.0), (t, layer)
                else:
                    assert np.all(g == 0.0), (t, layer)
            # the biases of the still-locked hidden layers are frozen too
            if not unlocked:
                assert np.all(grads[layer]["b"] == 0.0), (t, layer)


@pytest.mark.parametrize("activation", STAIRCASE_ACTIVATIONS)
@pytest.mark.parametrize("depth", [2, 4, 8])
def test_first_update_of_each_layer_is_rank_one(depth, activation):
    """The step a layer unlocks, its W becomes rank one: all rows parallel (s2/s1 ~ 0)."""
    history = _sgd_staircase(depth, activation, steps=depth)
    for layer in range(depth):
        unlock_step = depth - 1 - layer
        W = history[unlock_step + 1][0][layer]["W"]
        s = np.linalg.svd(W, compute_uv=False)
        assert s[0] > 0.0
        # Exactly rank one in exact arithmetic. In float64 the input layer's update
        # sum_n c_n x_n can cancel strongly (deep nets, tiny c_n), which lifts the rounding
        # floor of s2/s1 to ~1e-8; a generic (random) matrix has s2/s1 of order 1.
        if len(s) > 1:
            assert s[1] <= 1e-6 * s[0], (layer, s)
    # after the first update every layer is rank <= 1 (only the output layer moved)
    after_first = history[1][0]
    assert all(np.linalg.matrix_rank(layer["W"]) <= 1 for layer in after_first)


@pytest.mark.parametrize("activation", ["tanh", "relu", "linear", "sin"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_total_stall_with_all_zero_params(activation, optimizer):
    """W = 0 and b = 0 with g(0) = 0: every hidden activation is 0, so no weight ever moves."""
    rng = np.random.RandomState(1)
    sizes = (3, 5, 4, 2)
    params = [{"W": jnp.zeros((o, i)), "b": jnp.zeros(o)} for i, o in zip(sizes[:-1], sizes[1:])]
    x = jnp.asarray(rng.randn(32, 3))
    y = jnp.asarray(rng.randn(32, 2) + 1.0)
    final = jax.jit(lambda p: train.train(
        p, x, y, activation=activation, loss="mse", optimizer=optimizer, learning_rate=0.05,
        steps=200).params)(params)
    for layer in final:
        assert np.all(np.asarray(layer["W"]) == 0.0)
    for layer in final[:-1]:
        assert np.all(np.asarray(layer["b"]) == 0.0)
    assert np.all(np.abs(np.asarray(final[-1]["b"])) > 0.1)  # the output bias did learn
