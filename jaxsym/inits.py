"""Weight and bias initialisation schemes, with traced scales.

Contract:
  * An *initializer* is a pure function ``init(key, shape, dtype=jnp.float32) -> array`` of exactly
    ``shape`` and ``dtype`` (the signature of ``jax.nn.initializers``). It draws only from ``key``.
  * Layout: weights are ``(n_out, n_in)`` (see :mod:`jaxsym.nn`), so ``fan_in = shape[-1]`` and
    ``fan_out = shape[-2]``; biases are ``(n_out,)``.
  * Every numeric scale (``value``, ``std``, ``limit``, ``scale``, ``eps``, ``sigma_b``,
    ``weight_value``) may be a Python number or a traced JAX scalar. Nothing here calls
    ``float()`` / ``bool()`` on a scale or branches on its value, so
    ``jax.vmap(fn)(keys, sigma_bs)`` or ``jax.jit(fn)`` over a grid of scales compiles once.
    Concrete negative (or non-finite) ``std`` / ``limit`` / ``eps`` / ``sigma_b`` raise ValueError
    naming the parameter; traced values cannot be checked and are not.
  * Flags (``fan_in_scaled``), shapes, dtypes, names and layer counts are static Python values.

Schemes, for ``W`` of shape ``(n_out, n_in)``:

  ===================  =======================================================================
  ``zeros()``          W = 0
  ``constant(v)``      W = v;  ``v / sqrt(fan_in)`` with ``fan_in_scaled``
  ``normal(s)``        W ~ N(0, s^2);  N(0, s^2 / fan_in) with ``fan_in_scaled`` (the
                       neural-tangents ``W_std`` convention)
  ``uniform(l)``       W ~ U(-l, l), so Var W = l^2 / 3
  ``glorot_*``         Var W = 2 / (fan_in + fan_out)        (aliases ``xavier_*``)
  ``he_*``             Var W = 2 / fan_in                    (aliases ``kaiming_*``)
  ``lecun_*``          Var W = 1 / fan_in
  ``orthogonal(g)``    W W^T = g^2 I if n_out <= n_in, else W^T W = g^2 I
  ===================  =======================================================================

The variance schemes and ``orthogonal`` are ``jax.nn.initializers`` called with
``in_axis=-1, out_axis=-2`` (``column_axis=-1``) for our layout. jax's ``*_normal`` variants are
*truncated* normals: N(0, 1) cut at +-2 and rescaled by 1 / 0.8796 so the variance is exactly
the one stated (so |W| <= 2.27 sqrt(Var)); ``*_uniform`` are U(-sqrt(3 Var), sqrt(3 Var)). These
fan-based schemes need a 2-D shape and raise ValueError on a 1-D (bias) shape.

On a 1-D bias shape ``(n,)`` the ``fan_in_scaled`` flag of ``constant`` / ``normal`` divides by
``sqrt(1)`` (a bias has no fan-in), i.e. it does nothing.

Symmetry tools: :func:`tied` makes any scheme exactly symmetric (all rows identical),
:func:`perturbed` adds ``eps * N(0, 1)`` to a scheme (e.g. to a tied one).

Keys: :func:`init_mlp` gives layer i (0-based) the key ``fold_in(key, i)`` and splits it into
``(key_W, key_b) = split(fold_in(key, i))``, so changing one layer's scheme (or the number of
layers after it) never changes another layer's draws.

Registry: :data:`SCHEMES` (alias :data:`WEIGHT_SCHEMES`) and :func:`make_initializer` build an
initializer from a config name and keyword scales, e.g.
``make_initializer("normal", std=1.0, fan_in_scaled=True)``.
"""

from __future__ import annotations

import numbers
import operator
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Initializer", "zeros", "constant", "normal", "uniform", "glorot_normal", "glorot_uniform",
    "xavier_normal", "xavier_uniform", "he_normal", "he_uniform", "kaiming_normal",
    "kaiming_uniform", "lecun_normal", "lecun_uniform", "orthogonal", "tied", "perturbed",
    "init_mlp", "bias_only", "SCHEMES", "WEIGHT_SCHEMES", "make_initializer", "scheme_names",
]

Initializer = Callable[..., jax.Array]  # (key, shape, dtype=jnp.float32) -> array of that shape


# --------------------------------------------------------------------------------------------
# helpers (static checks only: nothing here looks at a traced value)
# --------------------------------------------------------------------------------------------

def _check_nonnegative(name: str, value) -> None:
    """Reject a *concrete* negative or non-finite scale; JAX arrays (maybe traced) pass."""
    if isinstance(value, (numbers.Real, np.ndarray)) and not isinstance(value, jax.Array):
        v = np.asarray(value, dtype=np.float64)
        if not (np.all(np.isfinite(v)) and np.all(v >= 0)):
            raise ValueError(f"{name} must be finite and >= 0, got {value!r}")


def _check_flag(name: str, flag) -> bool:
    if not isinstance(flag, (bool, np.bool_)):
        raise TypeError(f"{name} must be a Python bool (a static flag), got {flag!r}")
    return bool(flag)


def _fan_in(shape) -> int:
    """``shape[-1]`` for a weight shape (ndim >= 2); 1 for a bias / scalar shape."""
    return shape[-1] if len(shape) >= 2 else 1


def _scale_dtype(scale, dtype):
    """A scale cast to ``dtype`` (explicit cast, allowed under strict dtype promotion)."""
    return jnp.asarray(scale, dtype)


# --------------------------------------------------------------------------------------------
# elementary schemes
# --------------------------------------------------------------------------------------------

def zeros() -> Initializer:
    """All entries zero: ``W = 0`` of any ``shape``.

    Returns:
      ``init(key, shape, dtype) -> jnp.zeros(shape, dtype)`` (``key`` unused).
    """

    def init(key, shape, dtype=jnp.float32):
        del key
        return jnp.zeros(shape, dtype)

    return init


def constant(value, fan_in_scaled: bool = False) -> Initializer:
    """All entries equal: ``W_ij = value``, or ``value / sqrt(fan_in)`` when ``fan_in_scaled``.

    Args:
      value: any real (negative and 0 allowed); Python number or traced JAX scalar.
      fan_in_scaled: static flag; divide by ``sqrt(shape[-1])`` for a shape of ndim >= 2 (a 1-D
        bias shape is not scaled).

    Returns:
      ``init(key, shape, dtype)`` -> array of ``shape`` filled with the value (``key`` unused).
    """
    fan_in_scaled = _check_flag("fan_in_scaled", fan_in_scaled)

    def init(key, shape, dtype=jnp.float32):
        del key
        v = _scale_dtype(value, dtype)
        if fan_in_scaled:
            v = v / jnp.sqrt(jnp.asarray(_fan_in(shape), dtype))
        return jnp.full(shape, v, dtype)

    return init


def normal(std, fan_in_scaled: bool = False) -> Initializer:
    """Gaussian entries: ``W_ij ~ N(0, std^2)`` i.i.d., or ``N(0, std^2 / fan_in)`` if scaled.

    With ``fan_in_scaled`` this is the neural-tangents convention ``W = (W_std / sqrt(n_in)) Z``,
    ``Z ~ N(0, 1)``; without it ``std`` is the absolute standard deviation (use it for biases:
    ``b ~ N(0, sigma_b^2)``).

    Args:
      std: standard deviation >= 0 (0 gives exact zeros); Python number or traced JAX scalar.
      fan_in_scaled: static flag; divide by ``sqrt(shape[-1])`` for ndim >= 2 shapes.

    Returns:
      ``init(key, shape, dtype) = std' * jax.random.normal(key, shape, dtype)``.
    """
    _check_nonnegative("std", std)
    fan_in_scaled = _check_flag("fan_in_scaled", fan_in_scaled)

    def init(key, shape, dtype=jnp.float32):
        s = _scale_dtype(std, dtype)
        if fan_in_scaled:
            s = s / jnp.sqrt(jnp.asarray(_fan_in(shape), dtype))
        return s * jax.random.normal(key, shape, dtype)

    return init


def uniform(limit) -> Initializer:
    """Uniform entries: ``W_ij ~ U(-limit, limit)`` i.i.d. (mean 0, variance ``limit^2 / 3``).

    Args:
      limit: half-width >= 0; Python number or traced JAX scalar.

    Returns:
      ``init(key, shape, dtype) = limit * jax.random.uniform(key, shape, dtype, -1, 1)``.
    """
    _check_nonnegative("limit", limit)

    def init(key, shape, dtype=jnp.float32):
        # U(-1, 1) drawn exactly as jax's variance_scaling draws it (minval=-1, default maxval),
        # so both share one compiled kernel per shape.
        return _scale_dtype(limit, dtype) * jax.random.uniform(key, shape, dtype, -1)

    return init


# --------------------------------------------------------------------------------------------
# fan-based schemes (jax.nn.initializers, (n_out, n_in) layout)
# --------------------------------------------------------------------------------------------

def _needs_matrix(name: str, jax_init) -> Initializer:
    """Wrap a jax initializer so that a non-2-D shape raises a clear ValueError."""

    def init(key, shape, dtype=jnp.float32):
        if len(shape) != 2:
            raise ValueError(
                f"init scheme {name!r} is fan-based and needs a 2-D weight shape (n_out, n_in), "
                f"got shape {tuple(shape)}; for 1-D bias shapes use zeros, constant, normal or "
                f"uniform")
        return jax_init(key, tuple(shape), dtype)

    return init


def _variance_scaling(name, variance, mode, distribution, scale, aliases=()):
    if distribution == "truncated_normal":
        law = ("a truncated normal: N(0, 1) cut at +-2, rescaled by 1/0.8796 so that the "
               "variance is exactly Var W")
    else:
        law = "uniform: U(-sqrt(3 Var W), sqrt(3 Var W))"

    def factory() -> Initializer:
        return _needs_matrix(name, jax.nn.initializers.variance_scaling(
            scale, mode, distribution, in_axis=-1, out_axis=-2))

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = (
        f"{name}: i.i.d. entries with ``Var W = {variance}``, ``W`` of shape (n_out, n_in), so "
        f"fan_in = n_in = shape[-1], fan_out = n_out = shape[-2].\n\n"
        f"The law is {law}.\n"
        f"Implemented as ``jax.nn.initializers.variance_scaling({scale}, {mode!r}, "
        f"{distribution!r}, in_axis=-1, out_axis=-2)``.\n"
        + (f"Aliases: {', '.join(aliases)}.\n" if aliases else "")
        + "\nReturns:\n  ``init(key, shape, dtype)``; raises ValueError unless "
        "``len(shape) == 2``.\n")
    return factory


_GLOROT, _HE, _LECUN = "2 / (fan_in + fan_out)", "2 / fan_in", "1 / fan_in"
glorot_normal = xavier_normal = _variance_scaling(
    "glorot_normal", _GLOROT, "fan_avg", "truncated_normal", 1.0, ("xavier_normal",))
glorot_uniform = xavier_uniform = _variance_scaling(
    "glorot_uniform", _GLOROT, "fan_avg", "uniform", 1.0, ("xavier_uniform",))
he_normal = kaiming_normal = _variance_scaling(
    "he_normal", _HE, "fan_in", "truncated_normal", 2.0, ("kaiming_normal",))
he_uniform = kaiming_uniform = _variance_scaling(
    "he_uniform", _HE, "fan_in", "uniform", 2.0, ("kaiming_uniform",))
lecun_normal = _variance_scaling("lecun_normal", _LECUN, "fan_in", "truncated_normal", 1.0)
lecun_uniform = _variance_scaling("lecun_uniform", _LECUN, "fan_in", "uniform", 1.0)


def orthogonal(scale=1.0) -> Initializer:
    """A Haar-random (semi-)orthogonal matrix times ``scale``, for ``W`` of shape (n_out, n_in).

    ``W W^T = scale^2 I_{n_out}`` (orthonormal rows) if ``n_out <= n_in``, else
    ``W^T W = scale^2 I_{n_in}`` (orthonormal columns). Implemented as
    ``jax.nn.initializers.orthogonal(scale, column_axis=-1)``.

    Args:
      scale: gain (any real; Python number or traced JAX scalar).

    Returns:
      ``init(key, shape, dtype)``; raises ValueError unless ``len(shape) == 2``.
    """
    return _needs_matrix("orthogonal", jax.nn.initializers.orthogonal(scale, column_axis=-1))


# --------------------------------------------------------------------------------------------
# symmetry tools
# --------------------------------------------------------------------------------------------

def tied(init: Initializer) -> Initializer:
    """An exactly symmetric layer: one row drawn from ``init`` repeated for every unit.

    ``tied(init)(key, shape)[i] == init(key, shape)[0]`` for every unit i (bitwise): ``W = 1 w^T``
    with ``1`` of length ``n_out = shape[0]`` and ``w`` (shape ``shape[1:]``) one row of a draw of
    the layer's own scheme, so ``w`` has exactly that scheme's law for the full layer shape (a
    fan-based scheme keeps its fan_out; for i.i.d. schemes this is simply ``init(key, shape[1:])``
    in law). For a 1-D bias shape ``(n,)`` one scalar fills the vector; a 0-D shape is passed
    through.

    Returns:
      ``tied_init(key, shape, dtype)`` of ``shape`` with all rows identical.
    """

    def tied_init(key, shape, dtype=jnp.float32):
        shape = tuple(shape)
        full = init(key, shape, dtype)
        if len(shape) == 0:
            return full
        return jnp.broadcast_to(full[:1], shape)

    return tied_init


def perturbed(init: Initializer, eps) -> Initializer:
    """``W = init(key_base, shape) + eps * Z``, ``Z ~ N(0, 1)`` i.i.d., independent of the base.

    ``key_base, key_noise = jax.random.split(key)``; the base draw uses ``key_base`` and the
    noise ``key_noise``. Typical use: start from an exactly symmetric layer and break the symmetry
    by ``eps``, e.g. ``perturbed(tied(normal(1.0)), 1e-3)`` or ``perturbed(constant(0.5), eps)``.
    ``eps = 0`` returns the base draw (of ``key_base``) exactly.

    Args:
      init: the base initializer.
      eps: noise standard deviation >= 0; Python number or traced JAX scalar.

    Returns:
      ``perturbed_init(key, shape, dtype)``.
    """
    _check_nonnegative("eps", eps)

    def perturbed_init(key, shape, dtype=jnp.float32):
        key_base, key_noise = jax.random.split(key)
        noise = jax.random.normal(key_noise, shape, dtype)
        return init(key_base, shape, dtype) + _scale_dtype(eps, dtype) * noise

    return perturbed_init


# --------------------------------------------------------------------------------------------
# whole networks
# --------------------------------------------------------------------------------------------

def _per_layer(inits, n_layers: int, what: str) -> list:
    if callable(inits):
        return [inits] * n_layers
    if isinstance(inits, (str, bytes)) or not isinstance(inits, Sequence):
        raise TypeError(f"{what} must be an initializer or a sequence of {n_layers} "
                        f"initializers, got {inits!r}")
    inits = list(inits)
    if len(inits) != n_layers:
        raise ValueError(f"{what} must be one initializer or a sequence of {n_layers} "
                         f"(one per layer), got {len(inits)}")
    for i, f in enumerate(inits):
        if not callable(f):
            raise TypeError(f"{what}[{i}] is not an initializer (not callable): {f!r}")
    return inits


def init_mlp(key, layer_sizes: Sequence[int], weight_init, bias_init, dtype=jnp.float32):
    """Initialise an MLP with ``layer_sizes = (n_0, n_1, ..., n_L)`` (``n_0`` inputs).

    Layer i = 1..L gets ``W_i = weight_init_i(key_W, (n_i, n_{i-1}))`` and
    ``b_i = bias_init_i(key_b, (n_i,))`` where, with 0-based ``j = i - 1``,
    ``key_W, key_b = jax.random.split(jax.random.fold_in(key, j))``. Each layer's draws depend
    only on ``key``, its index and its own scheme and sizes.

    Args:
      key: a PRNG key (typed ``jax.random.key`` or raw ``PRNGKey``; may be traced / vmapped).
      layer_sizes: static ints, at least two, each >= 1 (depth ``L = len(layer_sizes) - 1``).
      weight_init, bias_init: one initializer used for every layer, or a sequence of exactly L
        initializers (layer 1 first).
      dtype: parameter dtype (e.g. ``jnp.float32`` or ``jnp.float64``).

    Returns:
      ``params = [{"W": (n_i, n_{i-1}), "b": (n_i,)} for i = 1..L]`` (see :mod:`jaxsym.nn`).

    Raises:
      ValueError: bad ``layer_sizes``; a sequence of the wrong length (names the expected L); an
        initializer returning the wrong shape or dtype.
    """
    try:
        sizes = tuple(operator.index(n) for n in layer_sizes)
    except TypeError:
        raise ValueError(f"layer_sizes must be a sequence of ints, got {layer_sizes!r}") from None
    if len(sizes) < 2 or any(n < 1 for n in sizes):
        raise ValueError(f"layer_sizes must hold >= 2 sizes, each >= 1, got {sizes}")
    n_layers = len(sizes) - 1
    weight_inits = _per_layer(weight_init, n_layers, "weight_init")
    bias_inits = _per_layer(bias_init, n_layers, "bias_init")
    dtype = jnp.dtype(dtype)
    params = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        key_w, key_b = jax.random.split(jax.random.fold_in(key, i))
        layer = {"W": weight_inits[i](key_w, (n_out, n_in), dtype),
                 "b": bias_inits[i](key_b, (n_out,), dtype)}
        for name, expected in (("W", (n_out, n_in)), ("b", (n_out,))):
            got = layer[name]
            if tuple(got.shape) != expected or got.dtype != dtype:
                raise ValueError(f"layer {i + 1} {name}: initializer returned shape "
                                 f"{tuple(got.shape)} dtype {got.dtype}, expected {expected} "
                                 f"{dtype}")
        params.append(layer)
    return params


def bias_only(weight_value, sigma_b, n_layers: int, output_weight_init=None,
              output_bias_init=None, fan_in_scaled: bool = False):
    """The study's canonical scheme: constant (possibly zero) weights, random biases.

    Every layer l = 1..L: ``W_l = weight_value`` in every entry (``weight_value / sqrt(n_{l-1})``
    if ``fan_in_scaled``; 0 allowed) and ``b_l ~ N(0, sigma_b^2)`` i.i.d. The output layer L is
    the same unless ``output_weight_init`` / ``output_bias_init`` override it. Only the biases
    can break the symmetry between the hidden units.

    Args:
      weight_value: the constant weight (any real; Python number or traced JAX scalar).
      sigma_b: bias standard deviation >= 0 (Python number or traced JAX scalar).
      n_layers: L >= 1, the number of weight layers (``len(layer_sizes) - 1``).
      output_weight_init, output_bias_init: optional initializers for layer L.
      fan_in_scaled: static flag for the constant weights.

    Returns:
      ``(weight_inits, bias_inits)``: two lists of L initializers for :func:`init_mlp`.
    """
    try:
        n_layers = operator.index(n_layers)
    except TypeError:
        raise ValueError(f"n_layers must be an int >= 1, got {n_layers!r}") from None
    if n_layers < 1:
        raise ValueError(f"n_layers must be an int >= 1, got {n_layers}")
    _check_nonnegative("sigma_b", sigma_b)
    weights = [constant(weight_value, fan_in_scaled)] * n_layers
    biases = [normal(sigma_b)] * n_layers
    if output_weight_init is not None:
        weights[-1] = output_weight_init
    if output_bias_init is not None:
        biases[-1] = output_bias_init
    return weights, biases


# --------------------------------------------------------------------------------------------
# name-based registry for configs
# --------------------------------------------------------------------------------------------

#: scheme name -> (factory, its allowed keyword arguments). Usable for weights and, where the
#: scheme is not fan-based, for biases.
SCHEMES: dict[str, tuple[Callable[..., Initializer], tuple[str, ...]]] = {
    "zeros": (zeros, ()),
    "constant": (constant, ("value", "fan_in_scaled")),
    "normal": (normal, ("std", "fan_in_scaled")),
    "uniform": (uniform, ("limit",)),
    "glorot_normal": (glorot_normal, ()),
    "glorot_uniform": (glorot_uniform, ()),
    "xavier_normal": (xavier_normal, ()),
    "xavier_uniform": (xavier_uniform, ()),
    "he_normal": (he_normal, ()),
    "he_uniform": (he_uniform, ()),
    "kaiming_normal": (kaiming_normal, ()),
    "kaiming_uniform": (kaiming_uniform, ()),
    "lecun_normal": (lecun_normal, ()),
    "lecun_uniform": (lecun_uniform, ()),
    "orthogonal": (orthogonal, ("scale",)),
}

#: The same registry under the name the configs use.
WEIGHT_SCHEMES = SCHEMES

#: keywords without a default, per scheme
_REQUIRED: dict[str, tuple[str, ...]] = {
    "constant": ("value",), "normal": ("std",), "uniform": ("limit",)}


def scheme_names() -> tuple[str, ...]:
    """The registered init scheme names, in registry order."""
    return tuple(SCHEMES)


def make_initializer(name: str, **scales) -> Initializer:
    """The initializer registered as ``name``, built with keyword ``scales``.

    E.g. ``make_initializer("normal", std=1.0, fan_in_scaled=True)`` is
    ``normal(1.0, fan_in_scaled=True)``; ``make_initializer("he_normal")`` is ``he_normal()``.
    Scales may be traced JAX scalars.

    Raises:
      ValueError: unknown scheme (lists the allowed names); an unknown or missing keyword (names
        the scheme and its allowed keywords); a concrete negative ``std`` / ``limit``.
    """
    if not isinstance(name, str) or name not in SCHEMES:
        raise ValueError(f"unknown init scheme {name!r}; allowed: {', '.join(SCHEMES)}")
    factory, allowed = SCHEMES[name]
    allowed_text = ", ".join(allowed) or "(none)"
    unknown = sorted(set(scales) - set(allowed))
    if unknown:
        raise ValueError(f"init scheme {name!r} got unknown keyword(s) "
                         f"{', '.join(map(repr, unknown))}; allowed: {allowed_text}")
    missing = [k for k in _REQUIRED.get(name, ()) if k not in scales]
    if missing:
        raise ValueError(f"init scheme {name!r} needs keyword(s) "
                         f"{', '.join(map(repr, missing))}; allowed: {allowed_text}")
    return factory(**scales)
