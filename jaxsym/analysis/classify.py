"""Numbers of the classification section: the theory's P(hidden layer 1 broken by the budget)
and mechanism per (cell, data draw, sigma_b), against the measured fraction.

Contract: :func:`classification_rows` ``(ds, predictions)`` -> rows (pure); :func:`analyse`
``(entries) -> dict`` for :mod:`jaxsym.reporting.classify`, with the predictions of
:func:`jaxsym.theory.predict.classify_study` computed once per run and cached.
"""

from __future__ import annotations

import numpy as np

from jaxsym.analysis import stats
from jaxsym.analysis.common import study_of, study_sections
from jaxsym.analysis.predictions import cached
from jaxsym.core.records import grid_dim

__all__ = ["classification_rows", "analyse"]


def _agrees(predicted: float, p: float, low: float, high: float) -> bool:
    """Both >= 0.9, both <= 0.1, or ``predicted`` inside the measured Wilson interval."""
    return ((predicted >= 0.9 and p >= 0.9) or (predicted <= 0.1 and p <= 0.1)
            or low - 1e-12 <= predicted <= high + 1e-12)


def classification_rows(ds, predictions: dict) -> list[dict]:
    """Predicted against measured P(hidden layer 1 broken by the budget), per cell, data draw
    and sigma_b (``predictions``: :func:`jaxsym.theory.predict.classify_study`).

    A row agrees when both are >= 0.9, or both <= 0.1, or the predicted value lies inside the
    measured 95% Wilson interval. Rows: ``cell`` (``{axis: value}``), ``draw``, ``sigma_b``,
    ``prediction`` (:class:`jaxsym.theory.classify.CellPrediction`), ``p_measured``, ``p_low``,
    ``p_high``, ``n``, ``agree``, and ``baseline_agree``: whether the trivial rule "smooth
    activations break (P = 1), piecewise-linear ones do not (P = 0)" agrees by the same test.
    """
    from jaxsym.theory.classify import piecewise_linear

    draws = np.asarray(ds.draw.values) if "draw" in ds.coords else np.zeros(ds.sizes["seed"],
                                                                            int)
    rows = []
    for (categorical, draw, sigma), pred in predictions.items():
        cell = dict(categorical)
        one = ds.sel(**{grid_dim(k): v for k, v in cell.items()
                        if grid_dim(k) in ds.dims}).sel(sigma_b=sigma)
        broken = one.broken_layer.isel(layer=0).values[draws == draw]
        low, high = stats.wilson_interval(int(broken.sum()), broken.size)
        p = float(broken.mean())
        activation = cell.get("activation", study_sections(ds)["model"]["activation"])
        trivial = 0.0 if piecewise_linear(activation) else 1.0
        rows.append({"cell": cell, "draw": draw, "sigma_b": float(sigma), "prediction": pred,
                     "p_measured": p, "p_low": float(low), "p_high": float(high),
                     "n": int(broken.size),
                     "agree": bool(_agrees(pred.p_broken, p, low, high)),
                     "baseline_agree": bool(_agrees(trivial, p, low, high))})
    return rows


def analyse(entries) -> dict:
    """``{"tables": [(ds, rows)], "slow_slope"}`` (``slow_slope``: the slope above which the
    theory calls a growing perturbation "slow", :data:`jaxsym.theory.classify.SLOW_SLOPE`)."""
    from jaxsym.theory.classify import SLOW_SLOPE
    from jaxsym.theory.predict import classify_study

    tables = [(ds, classification_rows(ds, cached("classify", study_of(ds), run_dir,
                                                  classify_study)))
              for ds, run_dir in entries]
    return {"tables": tables, "slow_slope": SLOW_SLOPE}
