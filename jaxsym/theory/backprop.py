"""The analytic-gradient oracle: textbook backpropagation in NumPy float64 (no JAX).

Contract: the same network as :func:`jaxsym.nn.apply` (params = list of layers
``{"W": (n_out, n_in), "b": (n_out,)}``, hidden activation g, linear output layer) and the same
losses as :mod:`jaxsym.nn`, but differentiated by hand with the formulas of the thread:

    z_i = a_{i-1} W_i^T + b_i,   a_i = g(z_i),   a_0 = x,   output z_L
    dz_L = dLoss/dz_L                                  (from the loss, below)
    dW_i = sum_batch dz_i a_{i-1}^T                    -> (n_i, n_{i-1})
    db_i = sum_batch dz_i                              -> (n_i,)
    dz_{i-1} = (W_i^T dz_i) * g'(z_{i-1})              (elementwise, hand-written g')

Output deltas (N = number of loss entries averaged over):
    mse         L = 0.5 mean (z - y)^2             dz = (z - y) / N
    bce         L = mean softplus(z) - y z         dz = (sigmoid(z) - y) / N
    softmax_ce  L = mean logsumexp(z) - z[label]   dz = (softmax(z) - onehot(label)) / batch

This module imports no JAX, so it is an independent check of ``jax.grad``.
"""

from __future__ import annotations

import numpy as np
import scipy.special

from jaxsym.activations import get_activation

__all__ = ["forward", "output_delta", "gradients", "LOSS_NAMES"]

LOSS_NAMES = ("mse", "bce", "softmax_ce")


def _float64(params):
    return [{"W": np.asarray(p["W"], np.float64), "b": np.asarray(p["b"], np.float64)}
            for p in params]


def forward(params, x, activation):
    """Forward pass storing every layer.

    Args:
      params: list of L layers ``{"W": (n_i, n_{i-1}), "b": (n_i,)}``.
      x: inputs ``(batch, n_0)``.
      activation: name of g.

    Returns:
      ``(zs, activations)``: ``zs[i]`` is z_{i+1} ``(batch, n_{i+1})`` for i = 0..L-1 (``zs[-1]``
      is the output), ``activations[i]`` is a_i for i = 0..L-1 (``activations[0] = x``).
    """
    g = get_activation(activation)
    a = np.asarray(x, np.float64)
    zs, activations = [], [a]
    for i, layer in enumerate(_float64(params)):
        z = a @ layer["W"].T + layer["b"]
        zs.append(z)
        if i < len(params) - 1:
            a = g.g(z)
            activations.append(a)
    return zs, activations


def output_delta(loss, outputs, targets):
    """Loss value and ``dz_L = dLoss/d outputs`` (same shape as ``outputs``), stable in float64.

    Args:
      loss: "mse" | "bce" | "softmax_ce".
      outputs: ``(batch, n_out)`` network outputs (logits for the cross-entropies).
      targets: ``(batch, n_out)`` floats for mse and bce; integer labels ``(batch,)`` for
        softmax_ce.
    """
    z = np.asarray(outputs, np.float64)
    if loss == "mse":
        y = np.asarray(targets, np.float64)
        diff = z - y
        return 0.5 * np.mean(diff * diff), diff / z.size
    if loss == "bce":
        y = np.asarray(targets, np.float64)
        value = np.mean(np.logaddexp(0.0, z) - y * z)
        return value, (scipy.special.expit(z) - y) / z.size
    if loss == "softmax_ce":
        labels = np.asarray(targets).astype(np.int64)
        batch = z.shape[0]
        log_softmax = z - scipy.special.logsumexp(z, axis=1, keepdims=True)
        value = -np.mean(log_softmax[np.arange(batch), labels])
        onehot = np.zeros_like(z)
        onehot[np.arange(batch), labels] = 1.0
        return value, (np.exp(log_softmax) - onehot) / batch
    raise ValueError(f"unknown loss {loss!r}; allowed: {', '.join(LOSS_NAMES)}")


def gradients(params, x, targets, activation, loss):
    """Loss value and its gradient with respect to every parameter, by backprop.

    Returns:
      ``(loss_value, grads)`` with ``grads`` the same list-of-dicts structure as ``params``:
      ``grads[i]["W"]: (n_i, n_{i-1})``, ``grads[i]["b"]: (n_i,)``.
    """
    g = get_activation(activation)
    params = _float64(params)
    zs, activations = forward(params, x, activation)
    value, dz = output_delta(loss, zs[-1], targets)
    grads = [None] * len(params)
    for i in reversed(range(len(params))):
        grads[i] = {"W": dz.T @ activations[i], "b": dz.sum(axis=0)}
        if i > 0:
            dz = (dz @ params[i]["W"]) * g.dg(zs[i - 1])
    return value, grads
