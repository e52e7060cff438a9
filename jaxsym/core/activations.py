"""Activation functions g with hand-written first and second derivatives g', g''.

Contract: every activation is written once, against an *array namespace* ``xp`` that provides
the elementwise functions it needs (``tanh``, ``exp``, ``erf`` ...). The NumPy namespace
:data:`NUMPY` is the default, so the float64 oracles in :mod:`jaxsym.theory` use these
definitions without importing JAX; :mod:`jaxsym.core.nn` binds the same definitions to
``jax.numpy``.
This module never imports JAX.

The derivatives are hand-written, not derived by autodiff: the test-suite checks them against
``jax.grad`` of ``g``. Conventions at kinks (relu, leaky_relu at 0) follow ``z > 0``:
relu'(0) = 0, leaky_relu'(0) = slope, and g'' = 0 away from smooth points.

>>> import numpy as np
>>> from jaxsym.core.activations import get_activation
>>> tanh = get_activation("tanh")
>>> float(tanh.dg(np.array(0.0)))
1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import scipy.special

__all__ = ["Activation", "ACTIVATIONS", "NUMPY", "get_activation", "activation_names"]

#: The NumPy array namespace (float64 oracles, mean-field quadrature).
NUMPY = SimpleNamespace(
    tanh=np.tanh,
    exp=np.exp,
    expm1=np.expm1,
    logaddexp=np.logaddexp,
    where=np.where,
    sin=np.sin,
    cos=np.cos,
    erf=scipy.special.erf,
    sigmoid=scipy.special.expit,
    zeros_like=np.zeros_like,
    ones_like=np.ones_like,
)

LEAKY_RELU_SLOPE = 0.01
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

Fn = Callable[[Any, Any], Any]  # (xp, z) -> array


@dataclass(frozen=True)
class Activation:
    """An elementwise activation ``g`` with its hand-written derivatives.

    Attributes:
      name: registry name.
      formula: the maths, for docs and reports.
      fn, d1, d2: ``(xp, z) -> array`` giving g(z), g'(z), g''(z) for an array namespace ``xp``.
    """

    name: str
    formula: str
    fn: Fn
    d1: Fn
    d2: Fn

    def g(self, z, xp=NUMPY):
        """g(z), elementwise; ``z`` any shape."""
        return self.fn(xp, z)

    def dg(self, z, xp=NUMPY):
        """g'(z), elementwise (hand-written)."""
        return self.d1(xp, z)

    def d2g(self, z, xp=NUMPY):
        """g''(z), elementwise (hand-written)."""
        return self.d2(xp, z)


def _gauss_pdf(xp, z):
    return _INV_SQRT_2PI * xp.exp(-0.5 * z * z)


def _sigmoid_d1(xp, z):
    s = xp.sigmoid(z)
    return s * (1.0 - s)


def _sigmoid_d2(xp, z):
    s = xp.sigmoid(z)
    return s * (1.0 - s) * (1.0 - 2.0 * s)


def _elu(xp, z):
    # expm1 only sees z <= 0, so the unused branch never overflows (and its gradient is finite).
    return xp.where(z > 0, z, xp.expm1(xp.where(z > 0, xp.zeros_like(z), z)))


def _elu_d1(xp, z):
    return xp.where(z > 0, xp.ones_like(z), xp.exp(xp.where(z > 0, xp.zeros_like(z), z)))


def _elu_d2(xp, z):
    return xp.where(z > 0, xp.zeros_like(z), xp.exp(xp.where(z > 0, xp.zeros_like(z), z)))


def _tanh_d1(xp, z):
    t = xp.tanh(z)
    return 1.0 - t * t


def _tanh_d2(xp, z):
    t = xp.tanh(z)
    return -2.0 * t * (1.0 - t * t)


_LIST = [
    Activation(
        "linear", "g(z) = z",
        lambda xp, z: z, lambda xp, z: xp.ones_like(z), lambda xp, z: xp.zeros_like(z)),
    Activation(
        "relu", "g(z) = max(z, 0)",
        lambda xp, z: xp.where(z > 0, z, xp.zeros_like(z)),
        lambda xp, z: xp.where(z > 0, xp.ones_like(z), xp.zeros_like(z)),
        lambda xp, z: xp.zeros_like(z)),
    Activation(
        "leaky_relu", f"g(z) = z if z > 0 else {LEAKY_RELU_SLOPE} z",
        lambda xp, z: xp.where(z > 0, z, LEAKY_RELU_SLOPE * z),
        lambda xp, z: xp.where(z > 0, xp.ones_like(z), LEAKY_RELU_SLOPE * xp.ones_like(z)),
        lambda xp, z: xp.zeros_like(z)),
    Activation("tanh", "g(z) = tanh(z)", lambda xp, z: xp.tanh(z), _tanh_d1, _tanh_d2),
    Activation(
        "sigmoid", "g(z) = 1 / (1 + exp(-z))",
        lambda xp, z: xp.sigmoid(z), _sigmoid_d1, _sigmoid_d2),
    Activation(
        "softplus", "g(z) = log(1 + exp(z))",
        lambda xp, z: xp.logaddexp(xp.zeros_like(z), z), lambda xp, z: xp.sigmoid(z), _sigmoid_d1),
    Activation(
        "gelu",
        "g(z) = z Phi(z) = z (1 + erf(z / sqrt 2)) / 2  (exact, not the tanh approximation)",
        lambda xp, z: 0.5 * z * (1.0 + xp.erf(z / _SQRT2)),
        lambda xp, z: 0.5 * (1.0 + xp.erf(z / _SQRT2)) + z * _gauss_pdf(xp, z),
        lambda xp, z: (2.0 - z * z) * _gauss_pdf(xp, z)),
    Activation("elu", "g(z) = z if z > 0 else exp(z) - 1", _elu, _elu_d1, _elu_d2),
    Activation(
        "erf", "g(z) = erf(z)",
        lambda xp, z: xp.erf(z),
        lambda xp, z: _TWO_OVER_SQRT_PI * xp.exp(-z * z),
        lambda xp, z: -2.0 * z * _TWO_OVER_SQRT_PI * xp.exp(-z * z)),
    Activation(
        "sin", "g(z) = sin(z)",
        lambda xp, z: xp.sin(z), lambda xp, z: xp.cos(z), lambda xp, z: -xp.sin(z)),
]

#: name -> :class:`Activation`, in a fixed order.
ACTIVATIONS: dict[str, Activation] = {a.name: a for a in _LIST}


def activation_names() -> tuple[str, ...]:
    """The registered activation names, in registry order."""
    return tuple(ACTIVATIONS)


def get_activation(name: str | Activation) -> Activation:
    """Look up an activation by name (an :class:`Activation` passes through).

    Raises:
      ValueError: for an unknown name; the message lists the allowed names.
    """
    if isinstance(name, Activation):
        return name
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown activation {name!r}; allowed: {', '.join(ACTIVATIONS)}") from None
