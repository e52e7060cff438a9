"""Mean-field signal propagation in wide random networks (Poole et al. 2016, Schoenholz et al.
2017), in NumPy/SciPy float64 (no JAX).

Contract: every function takes an activation name (the registry of :mod:`jaxsym.core.activations`,
with its hand-written g', g'') and the weight / bias variances ``sigma_w2 = sigma_w^2`` and
``sigma_b2 = sigma_b^2`` of ``W_ij ~ N(0, sigma_w^2 / n_in)``, ``b_i ~ N(0, sigma_b^2)``.
Gaussian expectations use Gauss-Hermite quadrature (``numpy.polynomial.hermite_e``).
Scalar functions are vectorised over ``sigma_w2`` / ``sigma_b2`` with ``numpy.vectorize``.

Maps, with z, z1, z2 independent N(0, 1):
    length map       q^l = sigma_w^2 E[g(sqrt(q^{l-1}) z)^2] + sigma_b^2,   fixed point q*
    correlation map  c^l = (sigma_w^2 E[g(u1) g(u2)] + sigma_b^2) / q*,
                     u1 = sqrt(q*) z1,  u2 = sqrt(q*) (c z1 + sqrt(1 - c^2) z2),  fixed point c*
    chi_1            = sigma_w^2 E[g'(sqrt(q*) z)^2]          (slope of the c-map at c = 1)
    depth scales     xi_q = -1 / ln(chi_1 + sigma_w^2 E[g''(u) g(u)]),  u = sqrt(q*) z
                     xi_c = -1 / ln(sigma_w^2 E[g'(u1) g'(u2)] at c*)
    critical line    the sigma_w^2 at which chi_1 = 1, for a given sigma_b^2

At sigma_w = 0 (the bias-only edge) every input maps to the same hidden state: c* = 1 and
chi_1 = 0, so gradients below the top layer vanish (the unlock staircase).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.polynomial import hermite_e
from scipy import optimize

from jaxsym.core.activations import get_activation

__all__ = ["MeanField", "gauss_expectation", "q_map", "q_star", "c_map", "c_star", "chi_1",
           "depth_scales", "mean_field", "critical_sigma_w2"]

# An even number of nodes: none at z = 0, where relu' jumps (E[relu'(z)^2] = 1/2 exactly).
# 200 nodes resolve integrands like g'(sqrt(q) z)^2 of width ~ 1/sqrt(q): relative error < 1e-3
# for q <= 10 (erf closed form: 1e-4 at q = 10); larger q* needs more care (not handled here).
_NODES, _WEIGHTS = hermite_e.hermegauss(200)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()  # E[f(z)] = sum w_i f(x_i) for z ~ N(0, 1)


def gauss_expectation(f) -> float:
    """``E[f(z)]`` for ``z ~ N(0, 1)`` (200-point Gauss-Hermite)."""
    return float(np.sum(_WEIGHTS * f(_NODES)))


def _pair_expectation(f, c: float) -> float:
    """``E[f(z1, c z1 + sqrt(1 - c^2) z2)]`` for independent standard normals (2-D rule)."""
    z1, z2 = np.meshgrid(_NODES, _NODES, indexing="ij")
    w = np.outer(_WEIGHTS, _WEIGHTS)
    return float(np.sum(w * f(z1, c * z1 + np.sqrt(max(1.0 - c * c, 0.0)) * z2)))


def q_map(q: float, activation: str, sigma_w2: float, sigma_b2: float) -> float:
    """One layer of the length map: ``sigma_w^2 E[g(sqrt(q) z)^2] + sigma_b^2``."""
    g = get_activation(activation)
    return sigma_w2 * gauss_expectation(lambda z: g.g(np.sqrt(q) * z) ** 2) + sigma_b2


def q_star(activation: str, sigma_w2: float, sigma_b2: float, q0: float = 1.0,
           max_layers: int = 10_000, tol: float = 1e-13) -> float:
    """Fixed point of the length map by iteration from ``q0`` (inf if it diverges)."""
    q = q0
    for _ in range(max_layers):
        nxt = q_map(q, activation, sigma_w2, sigma_b2)
        if not np.isfinite(nxt) or nxt > 1e12:
            return float("inf")
        if abs(nxt - q) <= tol * max(1.0, q):
            return nxt
        q = nxt
    return q


def c_map(c: float, q: float, activation: str, sigma_w2: float, sigma_b2: float) -> float:
    """One layer of the correlation map at length ``q`` (both inputs at the fixed point)."""
    g = get_activation(activation)
    s = np.sqrt(q)
    pair = _pair_expectation(lambda u1, u2: g.g(s * u1) * g.g(s * u2), c)
    return (sigma_w2 * pair + sigma_b2) / q


def c_star(activation: str, sigma_w2: float, sigma_b2: float, c0: float = 0.0,
           max_layers: int = 10_000, tol: float = 1e-12) -> float:
    """Stable fixed point of the correlation map at ``q = q*``.

    Ordered phase (``chi_1 <= 1``): c = 1 is the stable fixed point (iterating from any c0
    converges to it, arbitrarily slowly near the critical line), so 1.0 is returned. Chaotic
    phase: the root of ``c_map(c) - c`` in ``[0, 1)`` (``scipy.optimize.brentq``; the map is
    above the diagonal at 0 and below it just under 1, where its slope chi_1 exceeds 1); if that
    bracket fails, the map is iterated from ``c0``.
    """
    q = q_star(activation, sigma_w2, sigma_b2)
    if not np.isfinite(q) or q == 0.0:
        return float("nan") if not np.isfinite(q) else 1.0
    if chi_1(activation, sigma_w2, sigma_b2, q) <= 1.0:
        return 1.0

    def excess(c):
        return c_map(c, q, activation, sigma_w2, sigma_b2) - c

    low, high = 0.0, 1.0 - 1e-6
    if excess(low) >= 0.0 > excess(high):
        return float(optimize.brentq(excess, low, high, xtol=tol))
    c = c0
    for _ in range(max_layers):
        nxt = min(c_map(c, q, activation, sigma_w2, sigma_b2), 1.0)
        if abs(nxt - c) <= tol:
            return nxt
        c = nxt
    return c


def chi_1(activation: str, sigma_w2: float, sigma_b2: float, q: float | None = None) -> float:
    """``sigma_w^2 E[g'(sqrt(q*) z)^2]`` (at ``q`` if given); inf where q* diverges."""
    g = get_activation(activation)
    q = q_star(activation, sigma_w2, sigma_b2) if q is None else q
    if not np.isfinite(q):
        return float("inf")
    return sigma_w2 * gauss_expectation(lambda z: g.dg(np.sqrt(q) * z) ** 2)


class MeanField(NamedTuple):
    """Mean-field summary at one (activation, sigma_w^2, sigma_b^2)."""

    q_star: float
    c_star: float
    chi_1: float
    xi_q: float
    xi_c: float


def depth_scales(activation: str, sigma_w2: float, sigma_b2: float) -> tuple[float, float]:
    """``(xi_q, xi_c)``: the depths over which q and c approach their fixed points."""
    g = get_activation(activation)
    q = q_star(activation, sigma_w2, sigma_b2)
    c = c_star(activation, sigma_w2, sigma_b2)
    s = np.sqrt(q)
    rate_q = chi_1(activation, sigma_w2, sigma_b2, q) + sigma_w2 * gauss_expectation(
        lambda z: g.d2g(s * z) * g.g(s * z))
    rate_c = sigma_w2 * _pair_expectation(lambda u1, u2: g.dg(s * u1) * g.dg(s * u2), c)

    def scale(rate):
        return float("inf") if rate >= 1.0 else (0.0 if rate <= 0.0 else -1.0 / np.log(rate))

    return scale(abs(rate_q)), scale(rate_c)


def mean_field(activation: str, sigma_w2: float, sigma_b2: float) -> MeanField:
    """q*, c*, chi_1, xi_q and xi_c together."""
    q = q_star(activation, sigma_w2, sigma_b2)
    xi_q, xi_c = depth_scales(activation, sigma_w2, sigma_b2)
    return MeanField(q, c_star(activation, sigma_w2, sigma_b2),
                     chi_1(activation, sigma_w2, sigma_b2, q), xi_q, xi_c)


def _critical(activation: str, sigma_b2: float, upper: float = 10.0) -> float:
    def excess(sigma_w2):
        return chi_1(activation, sigma_w2, sigma_b2) - 1.0

    lower = 1e-6
    if excess(lower) > 0 or excess(upper) < 0:
        return float("nan")
    return optimize.brentq(excess, lower, upper, xtol=1e-12)


def critical_sigma_w2(activation: str, sigma_b2):
    """The critical line: ``sigma_w^2`` with ``chi_1 = 1`` (edge of chaos) at each
    ``sigma_b^2`` (vectorised); nan where chi_1 does not cross 1 on (0, 10]."""
    return np.vectorize(lambda s: _critical(activation, float(s)))(sigma_b2)
