"""The analytic-gradient oracle: textbook backpropagation in NumPy float64, no JAX.

Contract:
  * Same network as :mod:`jaxsym.core.nn`: ``params`` is a list of L layers, layer 1 first, each
    ``{"W": (n_i, n_{i-1}), "b": (n_i,)}``; hidden layers apply g, the output layer is linear.
  * Same losses as :func:`jaxsym.core.nn.loss_fn` ("mse", "bce", "softmax_ce"), with dL/dz_L written
    by hand and numerically stable for huge logits.
  * Every array is converted to NumPy float64 (integer labels for "softmax_ce"); this module
    never imports JAX, and uses the hand-written g' of :mod:`jaxsym.core.activations`.

Formulas, with a_0 = x of shape (batch, n_0)::

    z_i = a_{i-1} W_i^T + b_i             (batch, n_i)      i = 1..L
    a_i = g(z_i)                          (batch, n_i)      i = 1..L-1;  output y_hat = z_L
    dz_L = dL/dz_L                        from the loss (see :func:`output_delta`)
    dW_i = dz_i^T a_{i-1}                 (n_i, n_{i-1})   = sum over batch of dz_i a_{i-1}^T
    db_i = sum over batch of dz_i         (n_i,)
    dz_{i-1} = (dz_i W_i) * g'(z_{i-1})   (batch, n_{i-1}) = (W_i^T dz_i) * g'(z_{i-1}) per example
"""

from __future__ import annotations

import numpy as np
import scipy.special

from jaxsym.core.activations import Activation, get_activation
from jaxsym.core.spec import LOSSES  # the losses the oracle knows: the study's

__all__ = ["forward", "output_delta", "gradients"]


def _as_float64_params(params):
    return [{"W": np.asarray(layer["W"], dtype=np.float64),
             "b": np.asarray(layer["b"], dtype=np.float64)} for layer in params]


def forward(params, x, activation: str | Activation):
    """Forward pass keeping every pre-activation and every layer input.

    Args:
      params: list of L layers ``{"W": (n_i, n_{i-1}), "b": (n_i,)}``.
      x: inputs, shape ``(batch, n_0)``.
      activation: name of the hidden activation g.

    Returns:
      ``(zs, activations)``, both lists of length L: ``zs[i-1] = z_i = a_{i-1} W_i^T + b_i`` of
      shape ``(batch, n_i)``, and ``activations[i] = a_i`` (shape ``(batch, n_i)``) for
      i = 0..L-1, with ``a_0 = x`` and ``a_i = g(z_i)``; ``activations[i]`` is the input of
      layer i+1. The network output is ``zs[-1] = z_L`` (linear output layer).
    """
    act = get_activation(activation)
    params = _as_float64_params(params)
    a = np.asarray(x, dtype=np.float64)
    zs, activations = [], [a]
    for i, layer in enumerate(params):
        z = a @ layer["W"].T + layer["b"]
        zs.append(z)
        if i < len(params) - 1:
            a = act.g(z)
            activations.append(a)
    return zs, activations


def output_delta(loss: str, outputs, targets):
    """The loss value and ``dz_L = dL/dz_L``, by hand, stable for huge logits.

    With z = ``outputs`` of shape ``(batch, n_out)``:

    * "mse": ``L = 0.5 mean (z - y)^2`` over all N = batch * n_out entries,
      ``dz = (z - y) / N``; ``targets`` y of shape ``(batch, n_out)``.
    * "bce": ``L = mean [log(1 + e^z) - y z]`` (computed as ``logaddexp(0, z) - y z``),
      ``dz = (sigmoid(z) - y) / N``; labels y in [0, 1], shape ``(batch, n_out)``.
    * "softmax_ce": ``L = mean over batch of [logsumexp(z) - z_label]`` (max-shifted),
      ``dz = (softmax(z) - onehot(label)) / batch``; integer labels of shape ``(batch,)``.

    Returns:
      ``(loss_value, dz)``: a Python float and an array of the shape of ``outputs``.

    Raises:
      ValueError: for an unknown loss name, listing the allowed names.
    """
    z = np.asarray(outputs, dtype=np.float64)
    if loss == "mse":
        y = np.asarray(targets, dtype=np.float64)
        residual = z - y
        return float(0.5 * np.mean(residual**2)), residual / z.size
    if loss == "bce":
        y = np.asarray(targets, dtype=np.float64)
        value = np.mean(np.logaddexp(0.0, z) - y * z)
        return float(value), (scipy.special.expit(z) - y) / z.size
    if loss == "softmax_ce":
        labels = np.asarray(targets).astype(np.int64)
        batch = z.shape[0]
        shifted = z - np.max(z, axis=1, keepdims=True)
        log_normaliser = np.log(np.sum(np.exp(shifted), axis=1))
        log_probs = shifted - log_normaliser[:, None]
        rows = np.arange(batch)
        value = -np.mean(log_probs[rows, labels])
        dz = np.exp(log_probs)
        dz[rows, labels] -= 1.0
        return float(value), dz / batch
    raise ValueError(f"unknown loss {loss!r}; allowed: {', '.join(LOSSES)}")


def gradients(params, x, targets, activation: str | Activation, loss: str):
    """Loss value and gradients of every parameter, by the textbook backprop formulas.

    Args:
      params: list of L layers ``{"W": (n_i, n_{i-1}), "b": (n_i,)}``.
      x: inputs ``(batch, n_0)``.
      targets: as for :func:`output_delta`.
      activation: name of the hidden activation g (its hand-written g' is used).
      loss: "mse", "bce" or "softmax_ce".

    Returns:
      ``(loss_value, grads)`` with ``grads`` a list of dicts of the structure of ``params``:
      ``dW_i = dz_i^T a_{i-1}`` of shape ``(n_i, n_{i-1})``, ``db_i = sum_batch dz_i`` of shape
      ``(n_i,)``, and ``dz_{i-1} = (dz_i W_i) * g'(z_{i-1})`` going down from ``dz_L``.
    """
    act = get_activation(activation)
    params = _as_float64_params(params)
    zs, activations = forward(params, x, act)
    loss_value, dz = output_delta(loss, zs[-1], targets)
    grads = [None] * len(params)
    for i in reversed(range(len(params))):
        grads[i] = {"W": dz.T @ activations[i], "b": np.sum(dz, axis=0)}
        if i > 0:
            dz = (dz @ params[i]["W"]) * act.dg(zs[i - 1])
    return loss_value, grads
