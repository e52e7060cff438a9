"""Training ONE network: the optax step that every code path uses, and a plain ``lax.scan`` loop.

Contract: every function here trains or evaluates a single network. Batching over networks
(``vmap``, ``lax.map``, sharding) is applied from outside by the sweep engine. Static choices are
Python values (activation, loss, optimizer kind, batch size, step count); every numeric knob
(learning rate, init scales) may be a traced JAX scalar, so one compile serves a whole grid.

One training core: :func:`update` is THE optax update and :func:`make_step` THE optimizer
step built on it. The study's engine
(:func:`jaxsym.core.network.run_network`) wraps it with its records and divergence guard, and
:func:`train` (the small API: theorem and oracle tests) scans it bare, so the tests
exercise the arithmetic the study runs. The forward and backward products are those of
:func:`jaxsym.core.dense.dense`: identical units stay bitwise identical on every CPU.

Minibatches: at step ``t`` the batch is ``batch_size`` rows of the training set drawn with
replacement, ``randint(fold_in(key, t), (batch_size,), 0, n)``, so a network's minibatch sequence
depends only on its own key.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxsym.core import dense, nn
from jaxsym.core.spec import OPTIMIZERS

__all__ = ["make_optimizer", "loss_of_params", "update", "make_step", "train", "Trajectory",
           "minibatch", "noisy_labels"]

#: optimizer kind (:data:`jaxsym.core.spec.OPTIMIZERS`) -> factory(learning_rate) ->
#: optax.GradientTransformation. sgd: ``p <- p - lr * grad``; momentum: heavy-ball 0.9,
#: ``v <- 0.9 v + grad, p <- p - lr * v``; adam: b1 = 0.9, b2 = 0.999, eps = 1e-8.
_FACTORIES: dict[str, Callable] = {
    "sgd": lambda lr: optax.sgd(lr),
    "momentum": lambda lr: optax.sgd(lr, momentum=0.9),
    "adam": lambda lr: optax.adam(lr),
}


def make_optimizer(kind: str, learning_rate, weight_decay=None) -> optax.GradientTransformation:
    """The optax transformation of ``kind`` with a (possibly traced) ``learning_rate``.

    ``weight_decay`` (None: off, the transformation is exactly the plain one; else a possibly
    traced rate lambda >= 0): coupled L2 decay, ``optax.add_decayed_weights(lambda)`` chained
    BEFORE the optimizer, so every optimizer follows the gradient of
    ``L(theta) + (lambda / 2) ||theta||^2`` over all parameters, weights and biases alike
    (sgd: ``p <- p - lr (grad + lambda p)``, PyTorch's ``SGD(weight_decay=lambda)``; for Adam
    this is L2-regularised Adam, ``Adam(weight_decay=lambda)``, not AdamW). Its fixed points are
    the critical points of the decayed loss, which :func:`jaxsym.theory.splitting.
    antisymmetric_block` analyses.

    Raises:
      ValueError: unknown kind, listing the allowed kinds.
    """
    try:
        factory = _FACTORIES[kind]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown optimizer {kind!r}; allowed: {', '.join(OPTIMIZERS)}") from None
    if weight_decay is None:
        return factory(learning_rate)
    return optax.chain(optax.add_decayed_weights(weight_decay), factory(learning_rate))


def loss_of_params(params: nn.Params, x: jax.Array, y: jax.Array, activation: str,
                   loss: str, hidden_widths: tuple[int, ...] | None = None,
                   dropout=None, kernel: str = "exact") -> jax.Array:
    """Scalar training loss ``L(params) = loss(apply(params, x), y)``; x: (batch, n_in).
    ``hidden_widths``, ``dropout``, ``kernel``: see :func:`jaxsym.core.nn.apply` (params in the
    training layout; dropout ``(rate, key)`` or None)."""
    return nn.loss_fn(loss)(nn.apply(params, x, activation, hidden_widths, dropout, kernel), y)


def update(tx: optax.GradientTransformation, objective: Callable[[nn.Params], jax.Array]):
    """THE optax update: ``state = (params, opt_state) -> (new_state, (loss, grads))``.

    ``loss, grads = objective(params), d objective / d params`` (``jax.value_and_grad``),
    ``updates, new_opt_state = tx.update(grads, opt_state, params)`` and
    ``new_params = optax.apply_updates(params, updates)``; ``params`` is any pytree (the
    padded layers of :func:`make_step`, a flat vector in :mod:`jaxsym.theory.saddle`). The
    study's step (:func:`make_step`) and the linearised theory (``jax.jvp`` of this map in
    :mod:`jaxsym.theory.escape` and :mod:`jaxsym.theory.saddle`) all use it, so they
    differentiate the arithmetic the study runs.
    """
    value_and_grad = jax.value_and_grad(objective)

    def step(state):
        params, opt_state = state
        value, grads = value_and_grad(params)
        updates, new_opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), new_opt_state), (value, grads)

    return step


def make_step(x: jax.Array, y: jax.Array, *, layer_sizes, activation: str, loss: str,
              optimizer: str, learning_rate, batch_size: int = 0,
              key: jax.Array | None = None, noise=None, noise_key: jax.Array | None = None,
              weight_decay=None, dropout=None, dropout_key: jax.Array | None = None,
              label_noise=None, label_key: jax.Array | None = None,
              kernel: str = "exact"):
    """The optimizer step of one network ``layer_sizes = (n_in, ..., n_out)`` on training set
    ``x: (n, n_in)``, ``y``, acting on params in the TRAINING LAYOUT
    (:func:`jaxsym.core.dense.pad_params`: hidden unit axes padded to 16, padding units masked and
    kept exactly 0), so that identical units stay bitwise identical (:mod:`jaxsym.core.dense`).

    Returns ``(tx, step)``: the optax transformation (``tx.init(padded_params)`` gives the
    initial optimizer state) and ``step(params, opt_state, t) -> (loss, grads, new_params,
    new_opt_state)``, where ``loss`` and ``grads`` are those of the batch of step ``t`` at
    ``params`` (before the update) and ``new_params = params + tx.update(grads)``
    (:func:`update`).

    ``batch_size`` 0 (or n) is full batch; else rows are drawn with ``key`` (module doc).

    ``noise`` (None: off; else a possibly traced scalar >= 0): after every update each
    parameter is multiplied by ``1 + noise * N(0, 1)``, drawn from ``fold_in(noise_key, t)``
    (one normal per parameter, independent across units): an emulation of non-deterministic
    kernels whose rounding differs from unit to unit. Padding units stay 0 (the noise is
    relative). With ``noise = None`` the step is exact (identical units stay identical).

    ``weight_decay`` (None: off; else a possibly traced rate >= 0): coupled L2 decay
    (:func:`make_optimizer`); the returned ``loss`` and ``grads`` stay those of the data loss.
    Decay keeps identical units identical (the same ``lambda p`` for each) and padding at 0.

    ``dropout`` (None: off; else a possibly traced rate in [0, 1)): the gradient of step ``t``
    is that of the loss with inverted dropout on every hidden layer
    (:func:`jaxsym.core.nn.hidden_activations`), masks from ``fold_in(dropout_key, t)``; the
    returned ``loss`` is that dropped-out batch loss. Dropout draws a different mask for each
    unit, so it breaks the symmetry of identical units (the point of the alternative).

    ``label_noise`` (None: off; else a possibly traced scale >= 0): the targets of step ``t``'s
    (mini)batch are ``y_b + label_noise * N(0, 1)``, drawn from ``fold_in(label_key, t)`` (one
    normal per target entry; label-noise SGD, Chen et al. 2023). The noise is the same for every
    unit, so identical units stay identical; it only changes how fast a deviation grows.

    ``kernel`` (static): "exact" (the default, everything above) or "plain", the UNSAFE
    textbook products (:func:`jaxsym.core.nn.plain_dense`) on params in the NATURAL layout
    (no padding, no masks): the arithmetic a plain JAX script runs, in which the CPU's
    remainder kernels may round one unit of a layer differently from its twins. It exists to
    measure that asymmetry as a noise source (:data:`jaxsym.core.spec.KERNELS`).

    Raises:
      ValueError: a minibatch without a key, noise, dropout or label noise without its key, or
        ``batch_size`` outside ``[0, n]``.
    """
    n = x.shape[0]
    if not 0 <= batch_size <= n:
        raise ValueError(f"batch_size must be in [0, {n}] (0 = full batch), got {batch_size}")
    full_batch = batch_size in (0, n)
    if not full_batch and key is None:
        raise ValueError("batch_size given without key; minibatches need a PRNG key")
    if noise is not None and noise_key is None:
        raise ValueError("noise given without noise_key; the noise needs a PRNG key")
    if dropout is not None and dropout_key is None:
        raise ValueError("dropout given without dropout_key; the masks need a PRNG key")
    if label_noise is not None and label_key is None:
        raise ValueError("label_noise given without label_key; the noise needs a PRNG key")
    nn.product(kernel)  # an unknown kernel fails here, with the allowed names
    tx = make_optimizer(optimizer, learning_rate, weight_decay)
    hidden_widths = tuple(int(w) for w in layer_sizes[1:-1]) if kernel == "exact" else None

    def step(params, opt_state, t):
        xb, yb = minibatch(x, y, batch_size, key, t)
        if label_noise is not None:
            yb = noisy_labels(yb, label_noise, label_key, t)

        drop = None if dropout is None else (dropout, jax.random.fold_in(dropout_key, t))

        def objective(p):
            return loss_of_params(p, xb, yb, activation, loss, hidden_widths, drop, kernel)

        (new_params, new_opt_state), (value, grads) = update(tx, objective)((params, opt_state))
        if noise is not None:
            new_params = _perturb(new_params, noise, jax.random.fold_in(noise_key, t))
        return value, grads, new_params, new_opt_state

    return tx, step


def minibatch(x, y, batch_size: int, key, t):
    """The (mini)batch of step ``t``: ``(x, y)`` for full batch (``batch_size`` 0 or ``n``),
    else the rows ``randint(fold_in(key, t), (batch_size,), 0, n)`` (with replacement)."""
    n = x.shape[0]
    if batch_size in (0, n):
        return x, y
    rows = jax.random.randint(jax.random.fold_in(key, t), (batch_size,), 0, n)
    return x[rows], y[rows]


def noisy_labels(y, label_noise, key, t):
    """``y + label_noise * N(0, 1)``, drawn from ``fold_in(key, t)`` (regression targets)."""
    return y + jnp.asarray(label_noise, y.dtype) * jax.random.normal(
        jax.random.fold_in(key, t), y.shape, y.dtype)


def _perturb(params, noise, key):
    """``p * (1 + noise * N(0, 1))`` elementwise, one draw per leaf from ``key``."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(tree, [
        p * (1 + jnp.asarray(noise, p.dtype) * jax.random.normal(k, p.shape, p.dtype))
        for p, k in zip(leaves, keys)])


class Trajectory(NamedTuple):
    """Result of :func:`train`.

    Attributes:
      params: parameters after the last step (same pytree as the initial params).
      losses: ``(steps,)`` loss of the (mini)batch used at each step, evaluated before its update.
    """

    params: nn.Params
    losses: jax.Array


def train(params: nn.Params, x: jax.Array, y: jax.Array, *, activation: str, loss: str,
          optimizer: str, learning_rate, steps: int, batch_size: int | None = None,
          key: jax.Array | None = None, weight_decay=None) -> Trajectory:
    """Train one network for ``steps`` optimizer steps (:func:`make_step` in ``lax.scan``, on
    the training layout; params in and out are in the natural layout).

    Args:
      params: initial params (list of ``{"W": (n_out, n_in), "b": (n_out,)}``).
      x, y: training set, ``x: (n, n_in)``; ``y: (n, n_out)`` or integer labels ``(n,)``.
      activation, loss, optimizer: static names (see ``nn.activation_names()``,
        :data:`jaxsym.core.spec.LOSSES`, :data:`jaxsym.core.spec.OPTIMIZERS`).
      learning_rate: Python float or traced scalar.
      steps: number of updates (static).
      batch_size: ``None`` for full batch; else rows per step (1..n), drawn with ``key``.
      key: PRNG key, required for minibatches.
      weight_decay: None (off) or the coupled L2 rate (:func:`make_optimizer`).

    Returns:
      :class:`Trajectory` with the final params and the per-step losses.
    """
    if batch_size is not None and not 1 <= batch_size <= x.shape[0]:
        raise ValueError(f"train: batch_size must be in [1, {x.shape[0]}], got {batch_size}")
    sizes = nn.layer_sizes(params)
    tx, step = make_step(x, y, layer_sizes=sizes, activation=activation, loss=loss,
                         optimizer=optimizer, learning_rate=learning_rate,
                         batch_size=batch_size or 0, key=key, weight_decay=weight_decay)

    def body(carry, t):
        p, opt_state = carry
        value, _, p, opt_state = step(p, opt_state, t)
        return (p, opt_state), value

    padded = dense.pad_params(params)
    (padded, _), losses = jax.lax.scan(body, (padded, tx.init(padded)),
                                       jnp.arange(steps, dtype=jnp.int32))
    return Trajectory(dense.unpad_params(padded, sizes), losses)
