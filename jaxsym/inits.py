"""Weight and bias initialisation schemes, with traced scales.

Contract: an *initializer* is a pure function ``init(key, shape, dtype) -> array`` (the signature
of ``jax.nn.initializers``). Weight shapes are ``(n_out, n_in)``, so fan_in = ``shape[-1]``.
Every numeric scale (``value``, ``std``, ``limit``, ``eps``, ``sigma_b``, ``weight_value``) may be a
Python number or a traced JAX scalar: nothing here branches on a scale's value, so
``jax.vmap(init_fn)(keys, scales)`` runs a whole grid of scales through one compilation.

Keys: :func:`init_mlp` gives layer i (0-based) the key ``fold_in(key, i)`` and splits it into
``(key_W, key_b)``, so changing one layer's scheme never changes another layer's draws.

Schemes (``W`` of shape ``(n_out, n_in)``):
  zeros            W = 0
  constant(v)      W = v, or v / sqrt(fan_in) with ``fan_in_scaled``
  normal(s)        W ~ N(0, s^2), or N(0, s^2 / fan_in) with ``fan_in_scaled`` (neural-tangents
                   ``W_std`` convention)
  uniform(l)       W ~ U(-l, l)
  glorot_*         Var W = 2 / (fan_in + fan_out)   (alias xavier_*)
  he_*             Var W = 2 / fan_in               (alias kaiming_*)
  lecun_*          Var W = 1 / fan_in
  orthogonal(g)    rows (or columns) orthonormal, times gain g
The ``*_normal`` variance schemes are jax's truncated normals (cut at 2 std, rescaled so the
variance is exactly the one stated); ``*_uniform`` are U(-sqrt(3 Var), sqrt(3 Var)).
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp

__all__ = [
    "Initializer", "zeros", "constant", "normal", "uniform", "glorot_normal", "glorot_uniform",
    "xavier_normal", "xavier_uniform", "he_normal", "he_uniform", "kaiming_normal",
    "kaiming_uniform", "lecun_normal", "lecun_uniform", "orthogonal", "tied", "perturbed",
    "init_mlp", "bias_only", "SCHEMES", "make_initializer", "scheme_names",
]

Initializer = Callable[..., jax.Array]  # (key, shape, dtype) -> array


def _check_nonnegative(name: str, value) -> None:
    """Reject a concrete negative / non-finite scale; traced values pass unchecked."""
    if isinstance(value, (int, float)) and not (0 <= value < float("inf")):
        raise ValueError(f"{name} must be finite and >= 0, got {value}")


def _fan_in(shape) -> int:
    return shape[-1] if len(shape) >= 2 else 1


def zeros() -> Initializer:
    """``W = 0``."""
    return lambda key, shape, dtype=jnp.float32: jnp.zeros(shape, dtype)


def constant(value, fan_in_scaled: bool = False) -> Initializer:
    """Every entry equal to ``value`` (``value / sqrt(fan_in)`` when ``fan_in_scaled``)."""

    def init(key, shape, dtype=jnp.float32):
        del key
        v = jnp.asarray(value, dtype)
        if fan_in_scaled:
            v = v / jnp.sqrt(jnp.asarray(_fan_in(shape), dtype))
        return jnp.full(shape, v, dtype)

    return init


def normal(std, fan_in_scaled: bool = False) -> Initializer:
    """``N(0, std^2)``, or ``N(0, std^2 / fan_in)`` when ``fan_in_scaled``."""
    _check_nonnegative("std", std)

    def init(key, shape, dtype=jnp.float32):
        s = jnp.asarray(std, dtype)
        if fan_in_scaled:
            s = s / jnp.sqrt(jnp.asarray(_fan_in(shape), dtype))
        return s * jax.random.normal(key, shape, dtype)

    return init


def uniform(limit) -> Initializer:
    """``U(-limit, limit)``."""
    _check_nonnegative("limit", limit)

    def init(key, shape, dtype=jnp.float32):
        return jnp.asarray(limit, dtype) * jax.random.uniform(key, shape, dtype, -1.0, 1.0)

    return init


def _needs_matrix(name: str, jax_init) -> Initializer:
    def init(key, shape, dtype=jnp.float32):
        if len(shape) != 2:
            raise ValueError(f"init scheme {name!r} needs a 2-D weight shape (n_out, n_in), got "
                             f"{tuple(shape)}; for biases use zeros, constant, normal or uniform")
        return jax_init(key, shape, dtype)

    return init


def _variance_scaling(name, mode, distribution, scale=1.0):
    def factory() -> Initializer:
        return _needs_matrix(name, jax.nn.initializers.variance_scaling(
            scale, mode, distribution, in_axis=-1, out_axis=-2))

    factory.__name__ = name
    factory.__doc__ = f"jax ``variance_scaling({scale}, {mode!r}, {distribution!r})`` for (n_out, n_in)."
    return factory


glorot_normal = xavier_normal = _variance_scaling("glorot_normal", "fan_avg", "truncated_normal")
glorot_uniform = xavier_uniform = _variance_scaling("glorot_uniform", "fan_avg", "uniform")
he_normal = kaiming_normal = _variance_scaling("he_normal", "fan_in", "truncated_normal", 2.0)
he_uniform = kaiming_uniform = _variance_scaling("he_uniform", "fan_in", "uniform", 2.0)
lecun_normal = _variance_scaling("lecun_normal", "fan_in", "truncated_normal")
lecun_uniform = _variance_scaling("lecun_uniform", "fan_in", "uniform")


def orthogonal(scale=1.0) -> Initializer:
    """Orthogonal matrix times ``scale``: ``W W^T = scale^2 I`` if n_out <= n_in, else
    ``W^T W = scale^2 I``."""
    base = jax.nn.initializers.orthogonal(1.0, column_axis=-1)

    def init(key, shape, dtype=jnp.float32):
        return jnp.asarray(scale, dtype) * base(key, shape, dtype)

    return _needs_matrix("orthogonal", init)


def tied(init: Initializer) -> Initializer:
    """An exactly symmetric layer: one row ``init(key, shape[1:])`` repeated for every unit.

    For a 1-D (bias) shape, one scalar fills the vector.
    """

    def tied_init(key, shape, dtype=jnp.float32):
        row = init(key, (1,) + tuple(shape[1:]), dtype)
        return jnp.broadcast_to(row, shape)

    return tied_init


def perturbed(init: Initializer, eps) -> Initializer:
    """``init(key_1, shape) + eps * N(0, 1)`` with an independent key (e.g. ``tied`` + noise)."""
    _check_nonnegative("eps", eps)

    def perturbed_init(key, shape, dtype=jnp.float32):
        key_base, key_noise = jax.random.split(key)
        return init(key_base, shape, dtype) + jnp.asarray(eps, dtype) * jax.random.normal(
            key_noise, shape, dtype)

    return perturbed_init


def _per_layer(inits, n_layers: int, what: str) -> list:
    if callable(inits):
        return [inits] * n_layers
    inits = list(inits)
    if len(inits) != n_layers:
        raise ValueError(f"{what} must be one initializer or a sequence of {n_layers} "
                         f"(one per layer), got {len(inits)}")
    return inits


def init_mlp(key, layer_sizes: Sequence[int], weight_init, bias_init, dtype=jnp.float32):
    """Initialise an MLP ``layer_sizes = (n_in, n_1, ..., n_out)``.

    Args:
      key: PRNG key; layer i draws from ``split(fold_in(key, i))`` -> (key_W, key_b).
      layer_sizes: at least two sizes (depth L = len(layer_sizes) - 1 >= 1).
      weight_init, bias_init: one initializer for all layers, or one per layer.
      dtype: parameter dtype.

    Returns:
      ``[{"W": (n_i, n_{i-1}), "b": (n_i,)} for i = 1..L]``.
    """
    sizes = tuple(layer_sizes)
    if len(sizes) < 2 or any(int(n) < 1 for n in sizes):
        raise ValueError(f"layer_sizes must hold >= 2 sizes, each >= 1, got {sizes}")
    n_layers = len(sizes) - 1
    weight_inits = _per_layer(weight_init, n_layers, "weight_init")
    bias_inits = _per_layer(bias_init, n_layers, "bias_init")
    params = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        key_w, key_b = jax.random.split(jax.random.fold_in(key, i))
        params.append({"W": weight_inits[i](key_w, (n_out, n_in), dtype),
                       "b": bias_inits[i](key_b, (n_out,), dtype)})
    return params


def bias_only(weight_value, sigma_b, n_layers: int, output_weight_init=None,
              output_bias_init=None, fan_in_scaled: bool = False):
    """The study's canonical scheme: constant weights, random biases.

    Every hidden layer: ``W = weight_value`` (``/ sqrt(fan_in)`` if ``fan_in_scaled``; 0 allowed),
    ``b ~ N(0, sigma_b^2)``. The output layer the same, unless overridden.

    Returns:
      ``(weight_inits, bias_inits)``, lists of ``n_layers`` initializers for :func:`init_mlp`.
    """
    _check_nonnegative("sigma_b", sigma_b)
    weights = [constant(weight_value, fan_in_scaled)] * n_layers
    biases = [normal(sigma_b)] * n_layers
    if output_weight_init is not None:
        weights[-1] = output_weight_init
    if output_bias_init is not None:
        biases[-1] = output_bias_init
    return weights, biases


#: scheme name -> (factory, its keyword scales)
SCHEMES: dict[str, tuple[Callable[..., Initializer], tuple[str, ...]]] = {
    "zeros": (zeros, ()),
    "constant": (constant, ("value", "fan_in_scaled")),
    "normal": (normal, ("std", "fan_in_scaled")),
    "uniform": (uniform, ("limit",)),
    "orthogonal": (orthogonal, ("scale",)),
    **{name: (factory, ()) for name, factory in [
        ("glorot_normal", glorot_normal), ("glorot_uniform", glorot_uniform),
        ("xavier_normal", xavier_normal), ("xavier_uniform", xavier_uniform),
        ("he_normal", he_normal), ("he_uniform", he_uniform),
        ("kaiming_normal", kaiming_normal), ("kaiming_uniform", kaiming_uniform),
        ("lecun_normal", lecun_normal), ("lecun_uniform", lecun_uniform)]},
}

_REQUIRED = {"constant": ("value",), "normal": ("std",), "uniform": ("limit",)}


def scheme_names() -> tuple[str, ...]:
    """The registered init scheme names."""
    return tuple(SCHEMES)


def make_initializer(name: str, **scales) -> Initializer:
    """The initializer called ``name`` with keyword ``scales`` (e.g. ``normal``, ``std=0.1``).

    Raises:
      ValueError: unknown scheme (lists the names), unknown or missing keyword (lists the
        scheme's keywords), negative concrete scale.
    """
    if name not in SCHEMES:
        raise ValueError(f"unknown init scheme {name!r}; allowed: {', '.join(SCHEMES)}")
    factory, allowed = SCHEMES[name]
    unknown = sorted(set(scales) - set(allowed))
    if unknown:
        raise ValueError(f"init scheme {name!r} takes no {unknown[0]!r}; allowed: "
                         f"{', '.join(allowed) or '(none)'}")
    missing = [k for k in _REQUIRED.get(name, ()) if k not in scales]
    if missing:
        raise ValueError(f"init scheme {name!r} needs {missing[0]!r}; allowed: "
                         f"{', '.join(allowed)}")
    return factory(**scales)
