"""Symmetry metrics of ONE network's hidden layers (pure, unbatched, jit/vmap friendly).

For hidden layer l with incoming rows ``w_j`` of ``W_l: (n_l, n_{l-1})`` and biases ``b_j``:

* **unit spread** ``= sqrt(mean_j ||u_j - mean_k u_k||^2) / mean_j ||u_j||`` with
  ``u_j = (w_j, b_j)`` (optionally with unit j's outgoing weights, column j of ``W_{l+1}``).
  It is exactly 0 for a symmetric layer (all units identical), so it shows rounding-level
  asymmetry (~1e-16 in float64) with no SVD floor. An all-zero layer has spread 0.
* **direction diversity** ``= s_2 / s_1`` of ``W_l`` (its two largest singular values): 0 when all
  rows are parallel (rank <= 1), which is where W = 0 with random biases stays after the first
  update. 0 for an all-zero matrix and for a single-unit layer. A PARAMETER metric: units with
  the same ``w_j`` and distinct ``b_j`` have diversity 0 although they compute different
  functions.
* **functional diversity** ``= s_2 / s_1`` of the centred activation matrix
  ``H_c = H - 1 mean_n(H)``, ``H = g(A_{l-1} W_l^T + b_l): (n, n_l)`` over a set of inputs (the
  columns are the units' functions on the data, up to a constant), and its **effective rank**
  ``exp(-sum_i p_i log p_i)``, ``p_i = s_i / sum_k s_k`` (Roy & Vetterli 2007): 1 for units
  that all compute one function up to scale, ``n_l`` for ``n_l`` equally strong independent
  ones. Linear units with one ``w`` and distinct biases: diversity 0 (one function plus
  constants); nonlinear ones: > 0 from step 0. Both are exactly 0 when every column of
  ``H_c`` is zero, and the diversity is exactly 0 (effective rank 1) when every column is
  bitwise equal (identical units).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsym.core import nn
from jaxsym.core.dense import padded, unit_sum

__all__ = ["unit_spread", "direction_diversity", "hidden_unit_vectors", "layer_spreads",
           "layer_diversities", "rank_two_diversity", "diversity_bounds", "centred_activations",
           "functional_scores"]


def unit_spread(units: jax.Array) -> jax.Array:
    """Relative spread of a set of unit vectors ``units: (n_units, dim)`` -> scalar.

    ``sqrt(mean_j ||u_j - u_bar||^2) / mean_j ||u_j||``; 0 when every row is identical or zero.
    """
    # shifting by one unit first makes identical units give exactly 0 (the mean of equal
    # floats is not always bitwise equal to them); the spread is shift-invariant
    shifted = units - units[:1]
    centred = shifted - jnp.mean(shifted, axis=0)
    spread = jnp.sqrt(jnp.mean(jnp.sum(centred * centred, axis=1)))
    scale = jnp.mean(jnp.linalg.norm(units, axis=1))
    safe = jnp.where(scale > 0, scale, jnp.ones_like(scale))
    return jnp.where(scale > 0, spread / safe, jnp.zeros_like(spread))


def _singular_value_ratio(W: jax.Array) -> jax.Array:
    s = jnp.linalg.svd(W, compute_uv=False)
    safe = jnp.where(s[0] > 0, s[0], jnp.ones_like(s[0]))
    return jnp.where(s[0] > 0, s[1] / safe, jnp.zeros_like(s[0]))


#: On CPU a vmapped SVD runs one matrix at a time: the batched LAPACK call splits its batch over
#: the intra-op thread pool and waits, and with one XLA device per core every pool thread can be
#: such a waiting SVD (a deadlock seen with jax 0.10.2). Per matrix the result is the same.
_sequential_ratio = jax.custom_batching.sequential_vmap(_singular_value_ratio)


def direction_diversity(W: jax.Array) -> jax.Array:
    """``s_2 / s_1`` of ``W: (n_out, n_in)`` -> scalar in [0, 1]; 0 if rank <= 1 or W = 0.

    Under ``vmap`` on CPU the SVDs run one matrix at a time (see ``_sequential_ratio``);
    elsewhere they stay batched.
    """
    if min(W.shape) < 2:
        return jnp.zeros((), W.dtype)
    if jax.default_backend() == "cpu":
        return _sequential_ratio(W)
    return _singular_value_ratio(W)


def centred_activations(H: jax.Array) -> jax.Array:
    """``H - 1 mean_n(H)`` for ``H: (n, units)``, computed so that bitwise-equal columns stay
    bitwise equal and a constant column becomes exactly 0: shifted by its first row first (the
    centred matrix is shift-invariant), the column sums taken with the unit axis padded
    (:func:`jaxsym.core.dense.unit_sum`)."""
    units = H.shape[1]
    wide = padded(H, 1)
    shifted = wide - wide[:1]
    return (shifted - unit_sum(shifted) / H.shape[0])[:, :units]


def _singular_values(M: jax.Array) -> jax.Array:
    return jnp.linalg.svd(M, compute_uv=False)


_sequential_singular_values = jax.custom_batching.sequential_vmap(_singular_values)


def functional_scores(H: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(functional diversity, effective rank)`` of one layer's activations ``H: (n, units)``
    (module doc): ``s_2 / s_1`` and ``exp(-sum p_i log p_i)`` of :func:`centred_activations`.
    ``(0, 0)`` when the centred matrix is 0; ``(0, 1)`` when its columns are all bitwise equal;
    ``(0, 1)`` too for a one-unit layer with a non-constant column."""
    centred = centred_activations(H)
    zero = jnp.zeros((), H.dtype)
    if min(H.shape) < 2:
        nonzero = jnp.any(centred != 0)
        return zero, jnp.where(nonzero, jnp.ones((), H.dtype), zero)
    s = (_sequential_singular_values(centred) if jax.default_backend() == "cpu"
         else _singular_values(centred))
    identical = jnp.all(centred == centred[:, :1])
    s = jnp.where(identical & (jnp.arange(s.shape[0]) > 0), zero, s)
    total = jnp.sum(s)
    safe_total = jnp.where(total > 0, total, jnp.ones_like(total))
    p = s / safe_total
    entropy = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), zero))
    erank = jnp.where(total > 0, jnp.exp(entropy), zero)
    safe_top = jnp.where(s[0] > 0, s[0], jnp.ones_like(s[0]))
    diversity = jnp.where(s[0] > 0, s[1] / safe_top, zero)
    return diversity, erank


def hidden_unit_vectors(params: nn.Params, layer: int, outgoing: bool = True) -> jax.Array:
    """Per-unit parameter vectors of hidden layer ``layer`` (0-based, < len(params) - 1).

    Returns ``(n_l, n_{l-1} + 1 [+ n_{l+1}])``: row j is ``(w_j, b_j[, W_{l+1}[:, j]])``.
    """
    if not 0 <= layer < len(params) - 1:
        raise ValueError(f"layer must be a hidden layer index in [0, {len(params) - 2}], "
                         f"got {layer}")
    cur = params[layer]
    parts = [cur["W"], cur["b"][:, None]]
    if outgoing:
        parts.append(params[layer + 1]["W"].T)
    return jnp.concatenate(parts, axis=1)


def layer_spreads(params: nn.Params, outgoing: bool = True) -> jax.Array:
    """Unit spread of every hidden layer -> ``(n_hidden_layers,)`` (empty for depth 1)."""
    return jnp.stack([unit_spread(hidden_unit_vectors(params, l, outgoing))
                      for l in range(len(params) - 1)]) if len(params) > 1 else jnp.zeros((0,))


def layer_diversities(params: nn.Params) -> jax.Array:
    """Direction diversity ``s_2/s_1`` of every hidden layer's W -> ``(n_hidden_layers,)``."""
    return jnp.stack([direction_diversity(params[l]["W"])
                      for l in range(len(params) - 1)]) if len(params) > 1 else jnp.zeros((0,))


def _normalised_gram_traces(W: jax.Array):
    """``(t, f)`` of ``G = V V^T`` for ``V = W / ||W||_F`` (the smaller Gram): ``t = tr G`` (1
    up to rounding, 0 for W = 0) and ``f = ||G||_F^2``. s2/s1 is scale-free: normalising first
    keeps tiny weights (e.g. 1e-10 early after W = 0) from underflowing in the fourth powers
    of ``f`` (float32 would report a false "diverse")."""
    norm = jnp.sqrt(jnp.sum(W * W))
    W = W / jnp.where(norm > 0, norm, jnp.ones_like(norm))
    gram = W @ W.T if W.shape[0] <= W.shape[1] else W.T @ W
    return jnp.trace(gram), jnp.sum(gram * gram)


def _upper_from_traces(t, f):
    root = jnp.sqrt(jnp.maximum(2.0 * f - t * t, 0.0))
    top, second = 0.5 * (t + root), jnp.maximum(0.5 * (t - root), 0.0)
    safe = jnp.where(top > 0, top, jnp.ones_like(top))
    return jnp.where(top > 0, jnp.sqrt(second / safe), jnp.zeros_like(top))


def rank_two_diversity(W: jax.Array) -> jax.Array:
    """Cheap estimate of ``s_2 / s_1`` of ``W`` from two traces, no SVD.

    With ``G = W W^T``, ``t = tr G = sum s_i^2`` and ``f = ||G||_F^2 = sum s_i^4``, the top two
    squared singular values of a rank-<=2 matrix solve ``l^2 - t l + (t^2 - f)/2 = 0``:
    ``l_{1,2} = (t +- sqrt(2 f - t^2)) / 2``. Exact when rank(W) <= 2 (in particular near the
    rank-one matrices where symmetry breaking is detected); otherwise an upper bound (see
    :func:`diversity_bounds`). Costs one small matmul. 0 for W = 0.
    """
    if min(W.shape) < 2:
        return jnp.zeros((), W.dtype)
    return _upper_from_traces(*_normalised_gram_traces(W))


def diversity_bounds(W: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(lower, upper)`` bounds of ``s_2 / s_1`` of ``W: (n_out, n_in)`` from two traces.

    With ``G = W W^T`` normalised to ``t = tr G = 1`` and ``f = ||G||_F^2 = sum l_i^2``
    (``l_i = s_i^2``): ``upper`` is :func:`rank_two_diversity` (the two eigenvalues with the same
    ``t`` and ``f``: ``l_1 >= l_1'`` because ``sum_{i>=2} l_i^2 <= (1 - l_1)^2``, so the ratio
    can only be overestimated); ``lower`` uses ``l_1 <= sqrt(f)`` and ``l_2 >= (1 - l_1) /
    (r - 1)`` (``r = min(n_out, n_in)``): ``s_2/s_1 >= sqrt((1 - sqrt f) / ((r - 1) sqrt f))``.
    Both come from one small matmul, no SVD; the exact value is needed only between them.
    """
    rank = min(W.shape)
    if rank < 2:
        zero = jnp.zeros((), W.dtype)
        return zero, zero
    t, f = _normalised_gram_traces(W)
    upper = _upper_from_traces(t, f)
    root_f = jnp.sqrt(f)
    safe = jnp.where(root_f > 0, root_f, jnp.ones_like(root_f))
    lower = jnp.sqrt(jnp.maximum(t - root_f, 0.0) / ((rank - 1) * safe))
    lower = jnp.where(root_f > 0, jnp.minimum(lower, upper), jnp.zeros_like(lower))
    return lower, upper
