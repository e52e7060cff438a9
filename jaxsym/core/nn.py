"""Pure-function multilayer perceptrons over a params pytree, and the study's losses.

Contract:
  * ``params`` is a list of layers, layer 1 first, each ``{"W": (n_out, n_in), "b": (n_out,)}``,
    so a layer reads like the maths: ``z = a @ W.T + b``.
  * Every function acts on ONE network (unbatched in the network axis); batching over networks is
    applied from outside with ``jax.vmap`` / ``lax.map`` by the sweep engine.
  * Hidden layers apply the activation ``g``; the output layer is linear (it returns logits).
  * Every layer's ``a @ W.T + b`` is :func:`jaxsym.core.dense.dense`: the same maths, computed so
    that units with bitwise-identical parameters get bitwise-identical values forward and backward
    on every CPU (see :mod:`jaxsym.core.dense`).
  * Activations and losses are selected by *static* names (one compile each); their definitions
    live in :mod:`jaxsym.core.activations` (shared with the NumPy oracle) and in optax.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Callable

import jax
import jax.numpy as jnp
import jax.scipy.special
import optax

from jaxsym.core.activations import ACTIVATIONS, Activation, activation_names, get_activation
from jaxsym.core.dense import dense
from jaxsym.core.spec import KERNELS, LOSSES

__all__ = [
    "JAX", "Params", "activation_fn", "activation_names", "apply", "dropout_mask",
    "hidden_activations",
    "get_activation",
    "layer_sizes", "loss_fn", "ACTIVATIONS", "plain_dense", "product",
]

Params = list  # list[dict[str, jax.Array]]

#: The ``jax.numpy`` array namespace that binds :mod:`jaxsym.core.activations` to JAX.
JAX = SimpleNamespace(
    tanh=jnp.tanh,
    exp=jnp.exp,
    expm1=jnp.expm1,
    logaddexp=jnp.logaddexp,
    where=jnp.where,
    sin=jnp.sin,
    cos=jnp.cos,
    erf=jax.scipy.special.erf,
    sigmoid=jax.nn.sigmoid,
    zeros_like=jnp.zeros_like,
    ones_like=jnp.ones_like,
)


def activation_fn(activation: str | Activation) -> Callable[[jax.Array], jax.Array]:
    """The JAX function ``z -> g(z)`` of a registered activation (ValueError if unknown)."""
    act = get_activation(activation)
    return lambda z: act.g(z, xp=JAX)


def layer_sizes(params: Params) -> tuple[int, ...]:
    """``(n_in, n_1, ..., n_out)`` of a params list."""
    return (params[0]["W"].shape[1],) + tuple(layer["W"].shape[0] for layer in params)


def plain_dense(a: jax.Array, W: jax.Array, b: jax.Array) -> jax.Array:
    """``a @ W.T + b`` as written, gradients by JAX's own transpose rules: the UNSAFE
    "plain" kernel (:data:`jaxsym.core.spec.KERNELS`). Same maths as
    :func:`jaxsym.core.dense.dense`, but the CPU's remainder kernels may give one unit of a
    layer other rounding than its twins (identical units can drift apart by an ulp)."""
    return a @ W.T + b


def product(kernel: str = "exact") -> Callable:
    """The layer product ``(a, W, b) -> a @ W.T + b`` of ``kernel`` (one of
    :data:`jaxsym.core.spec.KERNELS`): :func:`jaxsym.core.dense.dense` or :func:`plain_dense`.

    Raises:
      ValueError: an unknown kernel, listing the allowed ones."""
    if kernel == "exact":
        return dense
    if kernel == "plain":
        return plain_dense
    raise ValueError(f"unknown kernel {kernel!r}; allowed: {', '.join(KERNELS)}")


def apply(params: Params, x: jax.Array, activation: str | Activation,
          hidden_widths: tuple[int, ...] | None = None, dropout=None,
          kernel: str = "exact") -> jax.Array:
    """The network output ``(batch, n_out)`` for inputs ``x: (batch, n_in)``.

    ``a_0 = x``, ``a_l = g(a_{l-1} W_l^T + b_l)`` for hidden layers, output ``a_{L-1} W_L^T + b_L``.
    Any depth L >= 1 (L = 1 is a linear model).

    ``hidden_widths``: for params in the training layout (:func:`jaxsym.core.dense.pad_params`), the
    real width of each hidden layer; the activations of the padding units are set to exactly 0
    (``g(0)`` need not be 0), so they contribute nothing and get zero gradients.

    ``dropout``: None (off) or ``(rate, key)``: training-time inverted dropout on every hidden
    layer (:func:`hidden_activations`).

    ``kernel``: how each layer's product is computed (:func:`product`; "exact" by default).
    """
    hidden = hidden_activations(params, x, activation, hidden_widths, dropout, kernel)
    last = params[-1]
    return product(kernel)(hidden[-1] if hidden else x, last["W"], last["b"])


def hidden_activations(params: Params, x: jax.Array, activation: str | Activation,
                       hidden_widths: tuple[int, ...] | None = None,
                       dropout=None, kernel: str = "exact") -> list[jax.Array]:
    """Every hidden layer's activations ``a_l = g(a_{l-1} W_l^T + b_l)``, ``(batch, n_l)``
    each, for inputs ``x: (batch, n_in)`` (layer 1 first; as in :func:`apply`, whose hidden
    layers these are, the padding units of training-layout params are exactly 0).

    ``dropout = (rate, key)`` (None: off): inverted dropout, ``a_l <- m_l * a_l / (1 - rate)``
    with ``m_l ~ Bernoulli(1 - rate)`` drawn by :func:`dropout_mask` from ``fold_in(key, l)``
    over the REAL units (batch, n_l), so the mask does not depend on the storage layout; the
    masked ``a_l`` feeds the next layer. Identical units get different masks: dropout breaks
    the symmetry of identical units by itself. ``kernel``: see :func:`apply`."""
    g = activation_fn(activation)
    layer_product = product(kernel)
    a, hidden = x, []
    for l, layer in enumerate(params[:-1]):
        a = g(layer_product(a, layer["W"], layer["b"]))
        if hidden_widths is not None and hidden_widths[l] < a.shape[-1]:
            a = jnp.where(jnp.arange(a.shape[-1]) < hidden_widths[l], a, jnp.zeros_like(a))
        if dropout is not None:
            rate, key = dropout
            width = a.shape[-1] if hidden_widths is None else hidden_widths[l]
            keep = dropout_mask(jax.random.fold_in(key, l), rate, (a.shape[0], width),
                                a.shape[-1])
            a = jnp.where(keep, a / (1 - jnp.asarray(rate, a.dtype)), jnp.zeros_like(a))
        hidden.append(a)
    return hidden


def dropout_mask(key: jax.Array, rate, shape: tuple[int, int], padded: int) -> jax.Array:
    """Boolean keep mask ``(batch, padded)``: ``Bernoulli(1 - rate)`` over the ``shape =
    (batch, n)`` real units (``jax.random.bernoulli``), False on the ``padded - n`` padding
    units."""
    keep = jax.random.bernoulli(key, 1 - rate, shape)
    return jnp.pad(keep, ((0, 0), (0, padded - shape[1])), constant_values=False)


def _mse(outputs, targets):
    return jnp.mean(optax.l2_loss(outputs, targets))


def _binary_cross_entropy(logits, labels):
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels.astype(logits.dtype)))


def _softmax_cross_entropy(logits, labels):
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


#: loss name (:data:`jaxsym.core.spec.LOSSES`) -> (loss(outputs, targets) -> scalar,
#: description). All are means over the batch.
_LOSS_FUNCTIONS: dict[str, tuple[Callable, str]] = {
    "mse": (_mse, "0.5 * mean over all entries of (y_hat - y)^2; targets (batch, n_out)"),
    "bce": (_binary_cross_entropy,
            "mean over all entries of the binary cross-entropy of sigmoid(logits); "
            "labels in [0, 1], shape (batch, n_out)"),
    "softmax_ce": (_softmax_cross_entropy,
                   "mean over the batch of -log softmax(logits)[label]; integer labels (batch,)"),
}


def loss_fn(name: str) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """The loss ``(outputs, targets) -> scalar`` registered under ``name``.

    Raises:
      ValueError: for an unknown name, listing the allowed names.
    """
    try:
        return _LOSS_FUNCTIONS[name][0]
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {name!r}; allowed: {', '.join(LOSSES)}") from None
