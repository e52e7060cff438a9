"""Which (activation, loss, task) lets random biases break symmetry: a prediction from theory
alone (no sweep), checked against a sweep.

For every cell (constant weights, biases N(0, sigma_b^2), full batch) and every data draw:

1. **Linearised escape** (:mod:`jaxsym.theory.escape`): from one symmetric trajectory, the
   predicted P(hidden layer 1 broken by the budget) at each sigma_b (chi^2 law of the bias
   deviations). Pooled over the draws it is the mean of the per-draw values.
2. **Mechanism** (the label of the cell):

   * ``log-law``: g'' != 0 (smooth activation) and the threshold amplitude ``a*_t`` still falls
     at the end of the budget: the symmetric point is a saddle in the antisymmetric directions
     (the splitting matrix has a negative eigenvalue, :mod:`jaxsym.theory.splitting`), so every
     sigma_b > 0 breaks, after ~ slope x log10(1/sigma_b) steps.
   * ``heals``: ``a*_t`` stopped falling: the antisymmetric perturbation decays along the
     trajectory (no negative curvature left, or the trajectory does not reach it), so small
     sigma_b never breaks.
   * ``transient``: piecewise-linear g (relu, leaky_relu: g'' = 0 almost everywhere, so S = 0 and
     there is no log-law), yet the first-order coupling through the output weights (the block R
     of the antisymmetric Hessian, nonzero away from the collapsed point) separates the units on
     the way there: breaks only when sigma_b is large enough for that transient.
   * ``kink``: piecewise-linear g and no first-order escape: only samples whose pre-activation
     lies within the bias spread of the kink can separate units (second order). The expected
     number of (sample, unit) pairs on the other side of the kink at step 0 is
     ``m sum_n Phi(-|z_n| / sigma_b)`` (:func:`kink_exposure`); far below 1, nothing breaks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

__all__ = ["piecewise_linear", "kink_exposure", "CellPrediction", "classify_study",
           "classification_rows", "MECHANISMS"]

MECHANISMS = ("log-law", "heals", "transient", "kink")


def piecewise_linear(activation: str) -> bool:
    """True when g'' = 0 wherever it is defined (relu, leaky_relu, linear)."""
    from jaxsym.activations import get_activation

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
    """Theory for one cell at one sigma_b: ``p_broken`` pooled over draws (mean), the per-draw
    values, the mechanism (per draw: the cell's label is the draws' most common one), the
    slope (steps per decade at the end of the budget, per draw; inf when not falling) and the
    kink exposure (piecewise-linear g only, else None)."""

    p_broken: float
    p_draws: tuple
    mechanism: str
    mechanisms: tuple
    slopes: tuple
    kink: float | None


def _mechanism(prediction, activation: str, p: float) -> str:
    if piecewise_linear(activation):
        return "transient" if p >= 0.5 else "kink"
    return "log-law" if math.isfinite(prediction.slope()) else "heals"


def classify_study(study) -> dict:
    """``{(categorical, sigma_b): CellPrediction}`` for every cell of a study with constant
    weights (theory only: one linearised escape per cell and data draw)."""
    import jax.numpy as jnp

    from jaxsym.theory import escape

    per_draw = [escape.predict_study(study, draw=k) for k in range(study.get("task.draws"))]
    sigmas = [float(s) for s in dict(study.grid).get("sigma_b", (study.get("init.sigma_b"),))]
    out = {}
    for key in per_draw[0]:
        categorical = key[0]
        activation = dict(categorical).get("activation", study.get("model.activation"))
        for sigma in sigmas:
            preds = [d[key] for d in per_draw]
            ps = tuple(float(p.p_broken_by(sigma)) for p in preds)
            mechs = tuple(_mechanism(p, activation, q) for p, q in zip(preds, ps))
            kink = None
            if piecewise_linear(activation):
                exposures = []
                for k in range(len(preds)):
                    task = study.make_task(k)
                    m = study.get("model.width")
                    value = study.get("init.weight_value")
                    w = np.full(task.dim, value / (math.sqrt(task.dim)
                                                   if study.get("init.fan_in_scaled") else 1.0))
                    exposures.append(kink_exposure(jnp.asarray(task.x_train), w, 0.0, sigma, m))
                kink = float(np.mean(exposures))
            common = max(set(mechs), key=mechs.count)
            out[(categorical, sigma)] = CellPrediction(
                float(np.mean(ps)), ps, common, mechs, tuple(p.slope() for p in preds), kink)
    return out


def classification_rows(ds, predictions: dict | None = None) -> list[dict]:
    """Predicted against measured P(hidden layer 1 broken by the budget), per cell and sigma_b.

    A cell agrees when both are >= 0.9, or both <= 0.1, or the predicted value lies inside the
    measured 95% Wilson interval. Rows: ``cell`` (``{axis: value}``), ``sigma_b``,
    ``prediction`` (:class:`CellPrediction`), ``p_measured``, ``p_low``, ``p_high``,
    ``p_draws_measured`` (per data draw), ``n``, ``agree``.
    """
    from jaxsym import report, stats

    study = report.study_of(ds)
    predictions = classify_study(study) if predictions is None else predictions
    draws = np.asarray(ds.draw.values) if "draw" in ds.coords else np.zeros(ds.sizes["seed"],
                                                                            int)
    rows = []
    for (categorical, sigma), pred in predictions.items():
        cell = dict(categorical)
        one = ds.sel(**{k: v for k, v in cell.items() if k in ds.dims}).sel(sigma_b=sigma)
        broken = one.broken_layer.isel(layer=0).values
        low, high = stats.wilson_interval(int(broken.sum()), broken.size)
        p = float(broken.mean())
        agree = ((pred.p_broken >= 0.9 and p >= 0.9) or (pred.p_broken <= 0.1 and p <= 0.1)
                 or low - 1e-12 <= pred.p_broken <= high + 1e-12)
        rows.append({"cell": cell, "sigma_b": float(sigma), "prediction": pred,
                     "p_measured": p, "p_low": float(low), "p_high": float(high),
                     "p_draws_measured": tuple(float(broken[draws == k].mean())
                                               for k in np.unique(draws)),
                     "n": int(broken.size), "agree": bool(agree)})
    return rows
