"""A small float64 demonstration of bias-only symmetry breaking (``jaxsym demo``).

A teacher ``y = tanh(x W_t^T) v`` with two hidden units of distinct directions, inputs
``x ~ N(0, I_2)`` (256 samples), is fitted by a student ``2 -> 8 -> 1`` whose hidden weights all
start equal to ``weight_value`` and whose biases are ``N(0, sigma_b^2)``, trained with full-batch
gradient descent. A symmetric (collapsed) student is a one-unit network and cannot fit the
teacher. For each sigma_b and seed the demo reports the hidden layer's direction diversity
``s2/s1`` and the final loss. This is a stand-in until the sweep engine and the study exist.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym.core import metrics, network, train
from jaxsym.core.precision import with_float64

__all__ = ["run_demo", "format_table"]

DIVERSITY_THRESHOLD = 1e-2


def _teacher_data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2))
    teacher_w = np.array([[1.5, 0.0], [0.0, -1.5]])
    y = np.tanh(x @ teacher_w.T) @ np.array([1.0, 1.0])
    return jnp.asarray(x), jnp.asarray(y[:, None])


@with_float64
def run_demo(activation="tanh", sigma_bs=(0.0, 1e-8, 1e-4, 1e-1), weight_value=None, seeds=32,
             steps=3000, learning_rate=0.2, width=8):
    """Train ``len(sigma_bs) * seeds`` students in one compiled, vmapped function.

    Returns a list of dict rows, one per sigma_b: ``sigma_b``, ``seeds``, ``p_broken`` (fraction
    with diversity > 1e-2), ``median_loss``, ``median_diversity``.
    """
    x, y = _teacher_data()
    sizes = (2, width, 1)
    if weight_value is None:
        weight_value = 1.0 / np.sqrt(sizes[0])

    def one(key, sigma_b):
        params = network.init_mlp(key, sizes, "constant", weight_value=weight_value,
                                  sigma_b=sigma_b, dtype=jnp.float64)
        result = train.train(params, x, y, activation=activation, loss="mse", optimizer="sgd",
                             learning_rate=learning_rate, steps=steps)
        return result.losses[-1], metrics.layer_diversities(result.params)[0]

    root = jax.random.key(0)
    grid = np.repeat(np.arange(len(sigma_bs)), seeds)
    seed = np.tile(np.arange(seeds), len(sigma_bs))
    keys = jax.vmap(lambda g, s: jax.random.fold_in(jax.random.fold_in(root, g), s))(grid, seed)
    sigma = jnp.asarray(np.asarray(sigma_bs, dtype=np.float64)[grid])
    losses, diversity = jax.jit(jax.vmap(one))(keys, sigma)
    losses = np.asarray(losses).reshape(len(sigma_bs), seeds)
    diversity = np.asarray(diversity).reshape(len(sigma_bs), seeds)
    return [{"sigma_b": s, "seeds": seeds,
             "p_broken": float(np.mean(diversity[i] > DIVERSITY_THRESHOLD)),
             "median_loss": float(np.median(losses[i])),
             "median_diversity": float(np.median(diversity[i]))}
            for i, s in enumerate(sigma_bs)]


def format_table(rows) -> str:
    """A plain-text table of :func:`run_demo` rows."""
    lines = [f"{'sigma_b':>9}  {'seeds':>5}  {'P(s2/s1 > 1e-2)':>15}  {'median loss':>11}  "
             f"{'median s2/s1':>12}"]
    for r in rows:
        lines.append(f"{r['sigma_b']:9.1e}  {r['seeds']:5d}  {r['p_broken']:15.2f}  "
                     f"{r['median_loss']:11.3e}  {r['median_diversity']:12.2e}")
    return "\n".join(lines)
