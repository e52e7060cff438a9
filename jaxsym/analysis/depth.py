"""Numbers of the depth section: every hidden layer's time to break in deep networks with
constant W and random b in every layer, measured and predicted network by network.

Contract: :func:`analyse` ``(entries) -> dict`` for :mod:`jaxsym.reporting.depth`; pure apart
from the cached theory predictions (:func:`jaxsym.analysis.predictions.cached`).

Per run (one depth), grid point (activation, sigma_b) and hidden layer:

* measured: the Kaplan-Meier median of the layer's step to break (``time_to_break_layer``:
  direction diversity s2/s1 of its W above the threshold, tested every step) with its 95% CI,
  and P(broken) with its Wilson interval; and the functional metric's median (the first record
  checkpoint at which the layer's ``functional_diversity`` exceeds the same threshold: its units
  compute different functions of the inputs; checkpoint resolution, an upper bound on the step);
* predicted: every network's step from :func:`jaxsym.theory.depth.layer_escapes` (leave the
  layer's directions parallel; and, second, leave the layer symmetric; no fit), summarised by
  the same Kaplan-Meier median (a network predicted not to break within the budget is
  censored there);
* agreement: the point meets the issue's target when the predicted median is within
  :data:`MEDIAN_TOLERANCE` of the measured one, or neither is reached within the budget; and
  per network, within :data:`NETWORK_TOLERANCE` (2 steps or 2%);
* for hidden layer 1, the first-order theory's prediction (along the fully symmetric
  trajectory, :func:`jaxsym.theory.predict.pooled_escape`) of the same networks, for comparison.
"""

from __future__ import annotations

import math

import numpy as np

from jaxsym.analysis import stats
from jaxsym.analysis.common import study_of
from jaxsym.analysis.predictions import cached

__all__ = ["MEDIAN_TOLERANCE", "NETWORK_TOLERANCE", "TARGET_DEPTHS", "TARGET_FRACTION",
           "first_crossing", "agreement", "point_numbers", "analyse"]

#: a predicted median counts as right within this relative distance of the measured one
MEDIAN_TOLERANCE = 0.05
#: a network's prediction counts as right within max(2 steps, 2%) of its measured step (the
#: tolerance of :func:`jaxsym.analysis.stochastic.network_agreement`)
NETWORK_TOLERANCE = (2, 0.02)
#: the issue's target: median within 5% at >= 90% of the points (per layer) at these depths
TARGET_DEPTHS = (3, 4)
TARGET_FRACTION = 0.9


def first_crossing(values, steps, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """``(step, crossed)`` per network: the first record step at which ``values`` ``(networks,
    checkpoints)`` exceeds ``threshold``, and whether it does (else the last step)."""
    above = np.asarray(values) > threshold
    crossed = above.any(axis=-1)
    first = np.where(crossed, np.asarray(steps)[np.argmax(above, axis=-1)], steps[-1])
    return first.astype(np.float64), crossed


def _median(times, budget: int) -> stats.MedianTime:
    """KM median of times with ``inf`` (or > budget) meaning not within the budget."""
    times = np.asarray(times, np.float64)
    events = np.isfinite(times) & (times <= budget)
    return stats.median_time(np.where(events, times, budget), events)


def agreement(predicted: stats.MedianTime, measured: stats.MedianTime) -> tuple[bool, float]:
    """``(ok, relative error)`` of a predicted against a measured median: within
    :data:`MEDIAN_TOLERANCE`, or both beyond the budget (error 0); one reached and the other
    not: not ok, error inf."""
    if not predicted.reached and not measured.reached:
        return True, 0.0
    if predicted.reached != measured.reached:
        return False, math.inf
    error = (predicted.median - measured.median) / max(measured.median, 1.0)
    return abs(error) <= MEDIAN_TOLERANCE, float(error)


def _networks_close(predicted, measured) -> int:
    """Networks whose predicted step is within :data:`NETWORK_TOLERANCE` of the measured one
    (or both beyond the budget: inf): :func:`jaxsym.analysis.stochastic.network_agreement`."""
    from jaxsym.analysis.stochastic import network_agreement

    return int(network_agreement(predicted, measured).sum())


def _compare(predicted, measured_t, measured, budget) -> dict:
    """One prediction of one layer against the measurement: its median, agreement, error and
    networks within tolerance."""
    median = _median(predicted, budget)
    ok, error = agreement(median, measured)
    return {"median": median, "ok": ok, "error": error,
            "k": int((np.isfinite(predicted) & (predicted <= budget)).sum()),
            "networks_close": _networks_close(predicted, measured_t)}


def point_numbers(cell, predicted: dict, first_order=None) -> list[dict]:
    """Per hidden layer of one grid point (``cell``: a Dataset over ``seed``): P(broken)
    measured, the measured and functional medians, and each prediction against them.

    Args:
      predicted: ``{"parallel": (seeds, n_hidden), "symmetric": (seeds, n_hidden)}`` predicted
        steps (inf: beyond the budget) of :func:`jaxsym.theory.depth.layer_escapes`; the
        layer's ``ok``, ``error``, ``networks_close`` and ``predicted`` (median) are those of
        the directions-parallel one, ``symmetric`` holds the other's.
      first_order: ``(seeds,)`` the first-order theory's steps for layer 1 (None: not shown).
    """
    budget = int(cell.attrs["steps"])
    threshold = float(cell.attrs["diversity_threshold"])
    out = []
    for layer in range(predicted["parallel"].shape[1]):
        broken = cell.broken_layer.values[:, layer]
        measured_t = np.where(broken, cell.time_to_break_layer.values[:, layer], np.inf)
        measured = _median(measured_t, budget)
        main = _compare(predicted["parallel"][:, layer], measured_t, measured, budget)
        f_steps, f_crossed = first_crossing(cell.functional_diversity.values[:, :, layer],
                                            cell.step.values, threshold)
        k = int(broken.sum())
        low, high = stats.wilson_interval(k, broken.size)
        row = {"layer": layer + 1, "n": broken.size, "k": k, "low": float(low),
               "high": float(high), "k_predicted": main["k"], "measured": measured,
               "predicted": main["median"], "ok": main["ok"], "error": main["error"],
               "networks_close": main["networks_close"],
               "symmetric": _compare(predicted["symmetric"][:, layer], measured_t, measured,
                                     budget),
               "functional": stats.median_time(f_steps, f_crossed), "first_order": None}
        if first_order is not None and layer == 0:
            row["first_order"] = _compare(first_order, measured_t, measured, budget)
        out.append(row)
    return out


def _first_order(ds, run_dir, amplitude) -> np.ndarray | None:
    """``(grid points, seeds)``: the first-order theory's step to break of hidden layer 1 of
    every network (its own draw's prediction at its own ``||b_1 - mean||``); None where that
    theory does not apply."""
    from jaxsym.study import plan
    from jaxsym.theory.predict import pooled_escape

    study = study_of(ds)
    try:
        pooled = cached("pooled_escape", study, run_dir, pooled_escape)
    except ValueError:
        return None
    by_activation = {dict(categorical).get("activation"): p
                     for (categorical, _), p in pooled.items()}
    count = study.get("seeds.count")
    out = np.full(amplitude.shape[:2], np.nan)
    for g, point in enumerate(plan.grid_points(study)):
        prediction = by_activation.get(point.get("activation", study.get("model.activation")))
        if prediction is None:
            continue
        for s in range(amplitude.shape[1]):
            out[g, s] = float(prediction.draws[s // count].break_time(amplitude[g, s, 0]))
    return out


def _cell(ds, point: dict):
    selection = {("loss_function" if k == "loss" else k): v for k, v in point.items()
                 if ("loss_function" if k == "loss" else k) in ds.dims}
    return ds.sel(selection)


def analyse(entries) -> dict:
    """``{"runs": [{"ds", "depth", "points": [{"activation", "sigma_b", "layers":
    point_numbers}]}], "target": {...}}`` with runs in order of depth; ``target``: at the
    :data:`TARGET_DEPTHS`, the (point, layer) pairs whose median meets the tolerance, of how
    many, whether that is >= :data:`TARGET_FRACTION`, and the misses."""
    from jaxsym.study import plan
    from jaxsym.theory.depth import layer_escapes

    runs = []
    for ds, run_dir in entries:
        study = study_of(ds)
        predictions = cached("layer_escapes", study, run_dir, layer_escapes)
        first_order = _first_order(ds, run_dir, predictions["amplitude"])
        points = []
        for g, point in enumerate(plan.grid_points(study)):
            cell = _cell(ds, point)
            points.append({"activation": point.get("activation",
                                                   study.get("model.activation")),
                           "sigma_b": float(point.get("sigma_b", study.get("init.sigma_b"))),
                           "layers": point_numbers(
                               cell, {k: predictions[k][g] for k in ("parallel", "symmetric")},
                               None if first_order is None else first_order[g])})
        runs.append({"ds": ds, "depth": len(ds.attrs["layer_sizes"]) - 1, "points": points})
    runs.sort(key=lambda r: r["depth"])
    return {"runs": runs, "target": _target(runs)}


def _target(runs) -> dict:
    rows = [(run["depth"], p, layer) for run in runs if run["depth"] in TARGET_DEPTHS
            for p in run["points"] for layer in p["layers"]]
    met = sum(layer["ok"] for _, _, layer in rows)
    symmetric = sum(layer["symmetric"]["ok"] for _, _, layer in rows)
    misses = [{"depth": d, "activation": p["activation"], "sigma_b": p["sigma_b"],
               "layer": layer["layer"], "error": layer["error"],
               "measured": layer["measured"], "predicted": layer["predicted"]}
              for d, p, layer in rows if not layer["ok"]]
    return {"met": met, "total": len(rows), "symmetric": symmetric,
            "reached": bool(rows) and met >= TARGET_FRACTION * len(rows),
            "misses": misses, "depths": TARGET_DEPTHS, "fraction": TARGET_FRACTION,
            "tolerance": MEDIAN_TOLERANCE}
