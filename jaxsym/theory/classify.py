"""Which (activation, loss, task) lets random biases break symmetry: a prediction from theory
alone (no sweep), checked against a sweep.

For every cell (constant weights, biases N(0, sigma_b^2), full batch) and every data draw:

1. **Linearised escape** (:mod:`jaxsym.theory.escape`): from one symmetric trajectory, the
   predicted P(hidden layer 1 broken by the budget) at each sigma_b (chi^2 law of the bias
   deviations).
2. **Mechanism** (:func:`mechanism`), from that prediction and the activation:

   * ``log-law``: it breaks, g'' != 0 (smooth activation) and the threshold amplitude ``a*_t``
     still falls at the end of the budget: the symmetric point is a saddle in the antisymmetric
     directions (the splitting matrix has a negative eigenvalue,
     :mod:`jaxsym.theory.splitting`), so every sigma_b > 0 breaks, after
     ~ slope x log10(1/sigma_b) steps.
   * ``transient``: it breaks, but on the way: either g is piecewise linear (relu, leaky_relu:
     g'' = 0 almost everywhere, so S = 0 and there is no log-law, yet the first-order coupling
     through the output weights, the block R of the antisymmetric Hessian, nonzero away from
     the collapsed point, separates the units), or ``a*_t`` has stopped falling by the end
     (the perturbation grew on the way but decays near the end point): smaller sigma_b
     would not break.
   * ``norm``: the first-order deviation grows but along the rows themselves (units differ in
     norm, not direction: ``a*_t = inf``); it breaks at second order, estimated by the norm
     mode of :mod:`jaxsym.theory.escape` (the deviation reaching sqrt(theta) of the rows).
   * ``slow``: it does not break by the budget although ``a*_t`` still falls (a later break).
   * ``heals``: it does not break and ``a*_t`` stopped falling: the antisymmetric perturbation
     decays, so small sigma_b never breaks.
   * ``unstable``: the symmetric trajectory itself diverges (too large a step for m identical
     units); the prediction covers the steps before that (the units usually separate first).
   * ``kink``: piecewise-linear g and no first-order escape: only samples whose pre-activation
     lies within the bias spread of the kink can separate units (second order). The expected
     number of (sample, unit) pairs on the other side of the kink at step 0 is
     ``m sum_n Phi(-|z_n| / sigma_b)`` (:func:`kink_exposure`); far below 1, nothing breaks.
     Along the trajectory, :meth:`jaxsym.theory.escape.EscapePrediction.p_kink_by` gives the
     probability that some unit crosses a kink on a different side than the symmetric unit
     by the budget (``CellPrediction.kink_trajectory``): a NECESSARY condition for a
     kink-driven break (no relu-type entry of the classification runs broke without it), not a
     sufficient one (the kick a crossing gives can stay below the threshold or heal), so it
     explains kink breaks but does not set ``p_broken``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

__all__ = ["piecewise_linear", "kink_exposure", "CellPrediction", "mechanism", "MECHANISMS"]

MECHANISMS = ("log-law", "transient", "norm", "slow", "heals", "kink", "unstable")


def piecewise_linear(activation: str) -> bool:
    """True when g'' = 0 wherever it is defined (relu, leaky_relu, linear)."""
    from jaxsym.core.activations import get_activation

    z = np.linspace(-4.0, 4.0, 801)
    z = z[np.abs(z) > 1e-9]
    return bool(np.all(get_activation(activation).d2g(z) == 0.0))


def kink_exposure(x, w, b: float, sigma_b: float, m: int) -> float:
    """Expected number of (sample, unit) pairs whose pre-activation ``z_n + d_j`` lies on the
    other side of the kink (0) than the symmetric ``z_n = w . x_n + b``, for bias deviations
    ``d_j ~ N(0, sigma_b^2)``: ``m sum_n Phi(-|z_n| / sigma_b)``."""
    if sigma_b <= 0:
        return 0.0
    z = np.asarray(x, np.float64) @ np.asarray(w, np.float64) + b
    return float(m * np.sum(sps.norm.sf(np.abs(z) / sigma_b)))


@dataclass(frozen=True)
class CellPrediction:
    """Theory for one cell, data draw and sigma_b: ``p_broken`` (P(layer 1 broken by the
    budget)), the mechanism, the slope (steps per decade at the end of the budget; inf when the
    perturbation no longer grows) and the kink exposure (piecewise-linear g only, else None)."""

    p_broken: float
    mechanism: str
    slope: float
    kink: float | None
    #: P(some unit crosses a kink on a different side along the trajectory by the budget),
    #: :meth:`jaxsym.theory.escape.EscapePrediction.p_kink_by` (piecewise-linear g only)
    kink_trajectory: float | None = None


#: how the end-of-budget growth is judged: slower than this many steps per decade counts as
#: stopped (a decade of sigma_b would cost more than the longest budget jaxsym runs)
SLOW_SLOPE = 1e4


def mechanism(activation: str, p_broken: float, slope: float, unstable: bool = False,
              p_first_order: float | None = None) -> str:
    """The mechanism label (module doc) from the prediction: ``unstable`` when the symmetric
    trajectory diverges (the learning rate is too large for m identical units, whose summed
    output makes the collapsed network's step m times stiffer), else ``log-law`` /
    ``transient`` when it breaks (P >= 0.5) at first order, ``norm`` when it breaks only
    through the norm-mode estimate (``p_first_order < 0.5``), ``slow`` / ``heals`` / ``kink``
    when it does not."""
    if unstable:
        return "unstable"
    if p_broken >= 0.5 and p_first_order is not None and p_first_order < 0.5:
        return "norm"
    growing = math.isfinite(slope) and slope < SLOW_SLOPE
    if piecewise_linear(activation):
        return "transient" if p_broken >= 0.5 else "kink"
    if p_broken >= 0.5:
        return "log-law" if growing else "transient"
    return "slow" if growing else "heals"
