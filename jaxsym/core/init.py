"""The ONE init path of a network: weights in the scheme of ``weight_mode``, biases N(0, sigma_b^2)
(PyTorch's uniform in mode torch_default).

Contract: :func:`init_params` ``(key, knobs, spec) -> params`` draws a network's initial
parameters (the natural layout of :mod:`jaxsym.core.nn`: a list of layers, layer 1 first,
``{"W": (n_out, n_in), "b": (n_out,)}``) from ONE standard normal draw of ``key``; the engine
calls it with traced knobs (one compile for every scheme: :func:`weights_from_draws` selects
with ``jnp.select``), the small API through :func:`init_mlp` with Python numbers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym.core.spec import WEIGHT_MODES, Architecture, NetworkSpec

__all__ = ["weights_from_draws", "biases_from_draws", "uniform_from_normal",
           "orthogonal_from_normal", "hadamard_rows", "init_params", "init_mlp"]


def weights_from_draws(spec: NetworkSpec, knobs, z: jax.Array, noise: jax.Array,
                       output: bool = False, first: bool = False) -> jax.Array:
    """One layer's weights ``(n_out, n_in)`` in the scheme selected by the traced
    ``knobs["weight_mode"]`` index, from two standard normal draws ``z, noise: (n_out, n_in)``
    (``output``: this is the output layer, static):

    constant: ``weight_value`` (``/ sqrt(n_in)`` if ``fan_in_scaled``); zero;
    glorot: ``sqrt(2 / (n_in + n_out)) Z`` (Glorot & Bengio's normal, untruncated);
    normal: ``(W_std / sqrt(n_in)) Z`` (LeCun's normal for ``W_std = 1``, Flax's default);
    tied: every unit the row ``(W_std / sqrt(n_in)) Z[0]``, plus ``eps E``; torch_default:
    :func:`uniform_from_normal` of Z on ``+-1 / sqrt(n_in)`` (PyTorch's ``nn.Linear``:
    ``kaiming_uniform_(a=sqrt(5))``); orthogonal: ``W_std`` x the (semi-)orthogonal factor of
    Z's QR (:func:`orthogonal_from_normal`, PyTorch's ``orthogonal_``); random_output: hidden
    layers constant, the output layer Glorot; signed_output: hidden layers constant, the output
    layer's column j ``(-1)^j`` x the constant (two groups of units with opposite outgoing
    weights); hadamard: the deterministic rows ``H[:n_out, :n_in] / sqrt(n_in)`` of the
    Sylvester Hadamard matrix (:func:`hadamard_rows`; distinct rows only as far as ``n_in``
    columns allow: ``2^n_in`` sign patterns at most); grouped: Glorot's
    ``sqrt(2 / (n_in + n_out)) Z[g(i), g(j)]`` with hidden unit j in group ``g(j) = j mod k``,
    ``k = knobs["groups"]`` (input features and output units are their own groups), so the
    hidden units form k groups of identical units (same incoming rows and outgoing columns,
    bitwise): k = 1 is one collapsed unit, k >= the width is Glorot itself (``first``: this is
    the first layer, whose inputs are features, static). The schemes share the two draws and
    are chosen by ``jnp.select``, so they share one compiled program; only the schemes of
    ``spec.weight_modes`` (static; every scheme by default) are computed, and a single one
    needs no select (the knob must then index it).
    """
    n_out, n_in = z.shape
    dtype = z.dtype
    modes = spec.weight_modes
    value = knobs["weight_value"].astype(dtype)
    if spec.fan_in_scaled:
        value = value / np.sqrt(n_in).astype(dtype)

    def constant():
        return jnp.full(z.shape, value, dtype)

    def glorot():
        return np.sqrt(2.0 / (n_in + n_out)).astype(dtype) * z

    def normal():
        return knobs["W_std"].astype(dtype) / np.sqrt(n_in).astype(dtype) * z

    def signed():
        signs = np.where(np.arange(n_in) % 2 == 0, 1.0, -1.0).astype(dtype)
        return constant() * signs

    schemes = {
        "constant": constant, "zero": lambda: jnp.zeros(z.shape, dtype), "glorot": glorot,
        "normal": normal,
        "tied": lambda: (jnp.broadcast_to(normal()[:1], z.shape)
                         + knobs["eps"].astype(dtype) * noise),
        "torch_default": lambda: uniform_from_normal(z, n_in),
        "orthogonal": lambda: knobs["W_std"].astype(dtype) * orthogonal_from_normal(z),
        "random_output": glorot if output else constant,
        "signed_output": signed if output else constant,
        "hadamard": lambda: jnp.asarray(hadamard_rows(n_out, n_in), dtype),
        "grouped": lambda: _grouped(glorot(), knobs.get("groups", 1.0), output, first)}
    if len(modes) == 1:
        return schemes[modes[0]]()
    index = knobs["weight_mode"].astype(jnp.int32)
    return jnp.select([index == WEIGHT_MODES.index(m) for m in modes],
                      [schemes[m]() for m in modes])


def _grouped(w: jax.Array, groups, output: bool, first: bool) -> jax.Array:
    """``w[g(i), g(j)]`` with ``g(j) = j mod groups`` on the hidden axes (rows unless
    ``output``, columns unless ``first``): every unit of a group gets its group's entries."""
    k = jnp.maximum(jnp.asarray(groups).astype(jnp.int32), 1)
    n_out, n_in = w.shape
    rows = jnp.arange(n_out) if output else jnp.arange(n_out) % k
    cols = jnp.arange(n_in) if first else jnp.arange(n_in) % k
    return w[rows[:, None], cols[None, :]]


def hadamard_rows(n_out: int, n_in: int) -> np.ndarray:
    """``H[:n_out, :n_in] / sqrt(n_in)`` of the Sylvester Hadamard matrix of order
    ``2^ceil(log2(max(n_out, n_in)))`` (``scipy.linalg.hadamard``): entries ``+-1/sqrt(n_in)``,
    deterministic, rows orthogonal when ``n_in`` is that order."""
    from scipy.linalg import hadamard

    order = 1 << max(int(np.ceil(np.log2(max(n_out, n_in, 1)))), 0)
    return hadamard(order)[:n_out, :n_in] / np.sqrt(n_in)


def _orthogonal(z):
    tall = z.shape[0] >= z.shape[1]
    q, r = jnp.linalg.qr(z if tall else z.T)
    q = q * jnp.sign(jnp.diagonal(r))[None, :]
    return q if tall else q.T


#: QR one matrix at a time under vmap on CPU (a batched LAPACK call waits on the thread pool:
#: see jaxsym.core.metrics._sequential_ratio)
_sequential_orthogonal = jax.custom_batching.sequential_vmap(_orthogonal)


def orthogonal_from_normal(z: jax.Array) -> jax.Array:
    """The (semi-)orthogonal factor of the QR of ``z: (n_out, n_in)`` with the signs of R's
    diagonal (Mezzadri's uniform Haar draw): orthonormal columns if ``n_out >= n_in``, else
    orthonormal rows. Computed in float32 for a bfloat16 ``z`` (LAPACK has no bfloat16)."""
    work = z.astype(jnp.float32) if z.dtype == jnp.bfloat16 else z
    q = _sequential_orthogonal(work) if jax.default_backend() == "cpu" else _orthogonal(work)
    return q.astype(z.dtype)


def uniform_from_normal(z: jax.Array, fan_in: int) -> jax.Array:
    """``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` draws from standard normal ones ``z``:
    ``(2 Phi(z) - 1) / sqrt(fan_in) = erf(z / sqrt 2) / sqrt(fan_in)`` (Phi the normal CDF),
    so the one-draw init stays one."""
    bound = (1.0 / np.sqrt(fan_in)).astype(z.dtype)
    return bound * jax.lax.erf(z * np.sqrt(0.5).astype(z.dtype))


def biases_from_draws(knobs, bias: jax.Array, fan_in: int,
                      modes: tuple[str, ...] = WEIGHT_MODES) -> jax.Array:
    """One layer's biases from the standard normal draw ``bias: (n_out,)``: ``sigma_b * bias``,
    or :func:`uniform_from_normal` on ``+-1/sqrt(fan_in)`` in mode torch_default (PyTorch's
    ``nn.Linear`` bias; sigma_b is not used there). ``modes``: the weight modes compiled in
    (static; the uniform draw is computed only if torch_default is one of them)."""
    scaled = knobs["sigma_b"].astype(bias.dtype) * bias
    if "torch_default" not in modes:
        return scaled
    if modes == ("torch_default",):
        return uniform_from_normal(bias, fan_in)
    torch = knobs["weight_mode"].astype(jnp.int32) == WEIGHT_MODES.index("torch_default")
    return jnp.where(torch, uniform_from_normal(bias, fan_in), scaled)


def init_params(key, knobs, spec: NetworkSpec | Architecture):
    """The network's initial parameters (see :mod:`jaxsym.core.nn` for the layout). The ONE init
    path: the engine calls it with traced knobs, :func:`init_mlp` with Python numbers.

    ALL of the network's initial randomness is ONE standard normal draw
    ``normal(key, (sum_l 2 n_l n_{l-1} + n_l,))``, cut in order into, for each layer l
    (first layer first): ``Z_l`` and ``E_l`` (``(n_l, n_{l-1})``, row-major) and ``B_l``
    (``(n_l,)``). Then ``W_l = weights_from_draws(spec, knobs, Z_l, E_l)`` and
    ``b_l = sigma_b B_l`` (:func:`biases_from_draws`). One draw instead of three per layer
    keeps the compiled program small (each ``jax.random`` call is its own loop on CPU).
    """
    dtype = jnp.dtype(spec.dtype)
    shapes = list(zip(spec.layer_sizes[1:], spec.layer_sizes[:-1]))
    total = sum(2 * n_out * n_in + n_out for n_out, n_in in shapes)
    flat = jax.random.normal(key, (total,), dtype)
    params, start = [], 0
    for n_out, n_in in shapes:
        size = n_out * n_in
        z = flat[start:start + size].reshape(n_out, n_in)
        noise = flat[start + size:start + 2 * size].reshape(n_out, n_in)
        bias = flat[start + 2 * size:start + 2 * size + n_out]
        start += 2 * size + n_out
        output = len(params) == len(shapes) - 1
        params.append({"W": weights_from_draws(spec, knobs, z, noise, output,
                                               first=not params),
                       "b": biases_from_draws(knobs, bias, n_in,
                                              spec.weight_modes)})
    return params


def init_mlp(key, layer_sizes, weight_mode: str = "constant", *, weight_value=0.0, sigma_b=0.0,
             W_std=1.0, eps=0.0, fan_in_scaled: bool = False, dtype="float64"):
    """Initial parameters of one MLP ``layer_sizes = (n_in, n_1, ..., n_out)``, exactly as the
    study's engine draws them (:func:`init_params`) for the given knobs.

    Every layer's weights follow ``weight_mode`` (one of :data:`WEIGHT_MODES`, see
    :func:`weights_from_draws`); every bias is ``sigma_b * N(0, 1)``. The numeric knobs may be
    traced scalars (e.g. under ``vmap`` over a grid of ``sigma_b``).

    Raises:
      ValueError: unknown ``weight_mode`` (listing the allowed ones) or a layer size < 1.
    """
    if weight_mode not in WEIGHT_MODES:
        raise ValueError(f"unknown weight_mode {weight_mode!r}; allowed: {', '.join(WEIGHT_MODES)}")
    sizes = tuple(int(n) for n in layer_sizes)
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"layer_sizes must be >= 2 sizes, each >= 1; got {tuple(layer_sizes)}")
    dtype = jnp.dtype(dtype)
    knobs = {"sigma_b": sigma_b, "weight_value": weight_value, "W_std": W_std, "eps": eps,
             "learning_rate": 0.0, "weight_mode": WEIGHT_MODES.index(weight_mode)}
    knobs = {k: jnp.asarray(v, dtype) for k, v in knobs.items()}
    return init_params(key, knobs, Architecture(sizes, bool(fan_in_scaled), dtype.name,
                                                (weight_mode,)))
