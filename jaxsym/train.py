"""Training ONE network: optax optimizer + ``lax.scan`` over steps (unbatched, pure).

Contract: every function here trains or evaluates a single network. Batching over networks
(``vmap``, ``lax.map``, sharding) is applied from outside by the sweep engine. Static choices are
Python values (activation, loss, optimizer kind, step count, batch size); every numeric knob
(learning rate, init scales) may be a traced JAX scalar, so one compile serves a whole grid.

Minibatches: at step ``t`` the batch is ``batch_size`` distinct rows of the training set chosen
with ``jax.random.choice(fold_in(key, t), n, (batch_size,), replace=False)``, so a network's
minibatch sequence depends only on its own key.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxsym import nn

__all__ = ["OPTIMIZERS", "make_optimizer", "optimizer_names", "loss_of_params", "train", "Trajectory"]

#: optimizer kind -> (factory(learning_rate) -> optax.GradientTransformation, description)
OPTIMIZERS: dict[str, tuple[Callable, str]] = {
    "sgd": (lambda lr: optax.sgd(lr), "plain (stochastic) gradient descent: p <- p - lr * grad"),
    "momentum": (lambda lr: optax.sgd(lr, momentum=0.9),
                 "heavy-ball momentum 0.9: v <- 0.9 v + grad, p <- p - lr * v"),
    "adam": (lambda lr: optax.adam(lr), "Adam (b1 = 0.9, b2 = 0.999, eps = 1e-8)"),
}


def optimizer_names() -> tuple[str, ...]:
    """The registered optimizer kinds."""
    return tuple(OPTIMIZERS)


def make_optimizer(kind: str, learning_rate) -> optax.GradientTransformation:
    """The optax transformation of ``kind`` with a (possibly traced) ``learning_rate``.

    Raises:
      ValueError: unknown kind, listing the allowed kinds.
    """
    try:
        factory = OPTIMIZERS[kind][0]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown optimizer {kind!r}; allowed: {', '.join(OPTIMIZERS)}") from None
    return factory(learning_rate)


def loss_of_params(params: nn.Params, x: jax.Array, y: jax.Array, activation: str,
                   loss: str) -> jax.Array:
    """Scalar training loss ``L(params) = loss(apply(params, x), y)``; x: (batch, n_in)."""
    return nn.loss_fn(loss)(nn.apply(params, x, activation), y)


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
          key: jax.Array | None = None) -> Trajectory:
    """Train one network for ``steps`` optimizer steps with ``lax.scan``.

    Args:
      params: initial params (list of ``{"W": (n_out, n_in), "b": (n_out,)}``).
      x, y: training set, ``x: (n, n_in)``; ``y: (n, n_out)`` or integer labels ``(n,)``.
      activation, loss, optimizer: static names (see ``nn.activation_names()``,
        ``nn.loss_names()``, :func:`optimizer_names`).
      learning_rate: Python float or traced scalar.
      steps: number of updates (static).
      batch_size: ``None`` for full batch; else rows per step (<= n), drawn with ``key``.
      key: PRNG key, required for minibatches.

    Returns:
      :class:`Trajectory` with the final params and the per-step losses.
    """
    n = x.shape[0]
    if batch_size is not None and key is None:
        raise ValueError("train: batch_size given without key; minibatches need a PRNG key")
    if batch_size is not None and not 1 <= batch_size <= n:
        raise ValueError(f"train: batch_size must be in [1, {n}], got {batch_size}")
    tx = make_optimizer(optimizer, learning_rate)
    value_and_grad = jax.value_and_grad(loss_of_params)

    def step(carry, t):
        p, opt_state = carry
        if batch_size is None or batch_size == n:
            xb, yb = x, y
        else:
            rows = jax.random.randint(jax.random.fold_in(key, t), (batch_size,), 0, n)
            xb, yb = x[rows], y[rows]
        value, grads = value_and_grad(p, xb, yb, activation, loss)
        updates, opt_state = tx.update(grads, opt_state, p)
        return (optax.apply_updates(p, updates), opt_state), value

    (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), jnp.arange(steps))
    return Trajectory(params, losses)
