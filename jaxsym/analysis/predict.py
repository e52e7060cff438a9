"""Numbers of the "answer, predicted" section: the linearised escape against the measured
time to break, per cell (categorical grid point), data draw and sigma_b.

Contract: :func:`compare` ``(ds, predictions)`` -> rows (pure); :func:`analyse`
``(entries) -> dict`` for :mod:`jaxsym.reporting.predict`, with the predictions of
:func:`jaxsym.theory.predict.pooled_escape` computed once per run and cached
(:mod:`jaxsym.analysis.predictions`).
"""

from __future__ import annotations

import numpy as np

from jaxsym.analysis import stats
from jaxsym.analysis.common import study_of
from jaxsym.analysis.predictions import cached
from jaxsym.core.records import grid_dim

__all__ = ["MEDIAN_TOLERANCE", "compare", "network_errors", "layer_table", "analyse"]

#: the whole-curve target: predicted median within this fraction of the measured KM median
MEDIAN_TOLERANCE = 0.05
#: the predicted quantiles the figure draws over a fine sigma_b grid
CURVE_QUANTILES = (0.1, 0.5, 0.9)


def _inside_ci(predicted: float, measured) -> bool:
    """Predicted median inside the measured median's 95% CI (both beyond the budget counts)."""
    if not np.isfinite(predicted):
        return not measured.reached or not np.isfinite(measured.high)
    return bool(measured.low <= predicted <= (measured.high if np.isfinite(measured.high)
                                               else np.inf))


def _row(cell, draw, sigma, prediction, one, layer) -> dict:
    times = one.time_to_break_layer.isel(layer=layer).values
    broken = one.broken_layer.isel(layer=layer).values
    median = stats.median_time(times, broken)
    predicted = prediction.median_time(sigma, layer)
    low, high = stats.wilson_interval(int(broken.sum()), broken.size)
    both = bool(np.isfinite(predicted) and median.reached)
    return {"cell": cell, "draw": draw, "sigma_b": sigma, "predicted": predicted,
            "measured": median, "p_predicted": float(prediction.p_broken_by(sigma, layer)),
            "p_measured": float(broken.mean()), "p_low": float(low), "p_high": float(high),
            "n": int(broken.size), "inside_ci": _inside_ci(predicted, median),
            "agree": (abs(predicted - median.median)
                      <= max(MEDIAN_TOLERANCE * median.median, 1.0) if both else
                      not np.isfinite(predicted) and not median.reached),
            "error": (predicted - median.median) / median.median if both else None}


def _draws(ds) -> np.ndarray:
    return np.asarray(ds.draw.values) if "draw" in ds.coords else np.zeros(ds.sizes["seed"], int)


def compare(ds, predictions: dict, layer: int = 0) -> list[dict]:
    """Predicted against measured, for every cell (categorical grid point) and sigma_b of a
    result dataset whose grid axes are categorical ones and sigma_b.

    Measured: the Kaplan-Meier median of hidden layer ``layer``'s time to break
    (``time_to_break_layer``, censored at the budget) with its 95% CI, and the fraction broken
    by the budget with its Wilson interval. Predicted: :meth:`EscapePrediction.median_time` and
    :meth:`EscapePrediction.p_broken_by` at the budget (``predictions``: from
    :func:`jaxsym.theory.predict.pooled_escape`).

    Rows with ``draw = None`` pool every network of the cell (against the mixture over the
    data draws); with several draws, rows for each draw alone follow (``draw = k``: its
    networks against its own prediction).

    Returns one dict per (cell, draw, sigma_b): ``cell`` (``{axis: value}``), ``draw``,
    ``sigma_b``, ``predicted`` (steps, inf = not by the budget), ``measured``
    (:class:`jaxsym.analysis.stats.MedianTime`), ``p_predicted``, ``p_measured``, ``p_low``,
    ``p_high``, ``n``, ``inside_ci`` (predicted median inside the measured CI), ``agree``
    (within :data:`MEDIAN_TOLERANCE` or one step, or both beyond the budget) and ``error``
    (relative, None unless both are finite).
    """
    extra = [d for d in ds.dims if d not in ("sigma_b", "seed", "step", "layer", "grad_step",
                                              "weight_layer")]
    draws = _draws(ds)
    rows = []
    for (categorical, _), prediction in predictions.items():
        cell = dict(categorical)
        if set(extra) - {grid_dim(k) for k in cell}:
            raise ValueError(f"compare needs grid axes that are categorical or sigma_b, got "
                             f"{extra}")
        sub = ds.sel(**{grid_dim(k): v for k, v in cell.items() if grid_dim(k) in ds.dims})
        parts = [(None, prediction, np.ones(draws.size, bool))]
        if len(getattr(prediction, "draws", ())) > 1:
            parts += [(k, p, draws == k) for k, p in enumerate(prediction.draws)]
        for draw, pred, seeds in parts:
            for sigma in sub.sigma_b.values:
                one = sub.sel(sigma_b=sigma).isel(seed=np.flatnonzero(seeds))
                rows.append(_row(cell, draw, float(sigma), pred, one, layer))
    return rows


def network_errors(ds, study, prediction, norms, draw: int = 0) -> np.ndarray:
    """Measured minus predicted step to break of every network of data draw ``draw`` of a
    one-configuration run ``ds`` (grid: sigma_b only): ``(n_sigma, seeds per draw)``, inf or
    -inf where exactly one of the two is beyond the budget, nan where both are. Each network's
    prediction is ``T(sigma_b ||d||)`` from its own initial bias deviation (``norms``: that
    draw's :func:`jaxsym.theory.predict.deviation_norms`), not the chi^2 law."""
    count = study.get("seeds.count")
    seeds = range(draw * count, (draw + 1) * count)
    sigma = ds.sigma_b.values
    predicted = prediction.break_time(sigma[:, None] * norms.reshape(len(sigma), -1))
    sub = ds.isel(seed=list(seeds))
    measured = np.where(sub.broken.values, sub.time_to_break.values, np.inf).reshape(
        predicted.shape)
    with np.errstate(invalid="ignore"):
        return measured - predicted


def layer_table(ds, predictions) -> list[dict]:
    """Per sigma_b and hidden layer of a deeper run: the predicted P(broken by the budget)
    (mean over the cells' pooled predictions), the measured fraction and KM median step, and
    the network's (every layer) measured P."""
    hidden = len(ds.attrs["layer_sizes"]) - 2
    rows = []
    for sigma in ds.sigma_b.values:
        one = ds.sel(sigma_b=sigma)
        layers = []
        for l in range(hidden):
            broken = one.broken_layer.isel(layer=l).values.ravel()
            times = one.time_to_break_layer.isel(layer=l).values.ravel()
            layers.append({"p_predicted": float(np.mean([pred.p_broken_by(float(sigma), l)
                                                         for pred in predictions.values()])),
                           "p_measured": broken.mean(),
                           "median": stats.median_time(times, broken)})
        rows.append({"sigma_b": sigma, "layers": layers, "p_network": float(one.broken.mean())})
    return rows


def curves(ds, predictions) -> list[dict]:
    """The figure's predicted curves: per cell and data draw, the predicted 10/50/90% quantiles
    of the time to break on 120 log-spaced sigma_b over the run's range."""
    sigma = ds.sigma_b.values
    fine = np.logspace(np.log10(sigma.min()), np.log10(sigma.max()), 120)
    out = []
    for (categorical, _), pooled in predictions.items():
        draws = getattr(pooled, "draws", [pooled])
        out.append({"categorical": categorical, "fine": fine, "draws": [
            {q: np.array([pred.time_quantile(s, q) for s in fine]) for q in CURVE_QUANTILES}
            for pred in draws]})
    return out


def analyse(entries) -> dict:
    """``{"panels": [{"ds", "rows", "curves", "layers" (None for one hidden layer)}],
    "tolerance"}``: every predict run against its cached pooled prediction."""
    from jaxsym.theory.predict import pooled_escape

    panels = []
    for ds, run_dir in entries:
        predictions = cached("pooled_escape", study_of(ds), run_dir, pooled_escape)
        panels.append({"ds": ds, "rows": compare(ds, predictions),
                       "curves": curves(ds, predictions),
                       "layers": (layer_table(ds, predictions)
                                  if len(ds.attrs["layer_sizes"]) > 3 else None)})
    return {"panels": panels, "tolerance": MEDIAN_TOLERANCE}
