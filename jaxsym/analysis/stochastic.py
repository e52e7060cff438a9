"""Numbers of the stochastic section: noise that keeps identical units identical (minibatches,
label noise) against the escape, measured network by network and predicted by the linearised
antisymmetric map along each network's own noisy symmetric trajectory
(:func:`jaxsym.theory.predict.noisy_escape_times`), plus the two-GELU toy of Chen et al. (2023)
(:mod:`jaxsym.theory.collapse_toy`).

Contract: :func:`analyse` ``(entries) -> dict`` for :mod:`jaxsym.reporting.stochastic`; the
predictions are computed once per run directory and cached (:mod:`jaxsym.analysis.predictions`).

Definitions.

* A network's predicted break ``T_k`` (inf: not within the steps) against its measured one:
  they *agree* when both are censored, or both finite and within ``max(2 steps, 2%)``.
* The Lyapunov exponent of a grid point: the median over its networks of the finite-time
  exponent of the map each follows (natural log per step, last half of the steps); < 0 means
  the noise makes the identical units an attractor (stochastic collapse), > 0 that they split.
  Measured counterpart, network by network: the growth rate of the recorded unit spread
  (``spread``, linear in the deviation) between two checkpoints ``t0 <= t1 / 2`` of its last
  stretch above the rounding floor (:data:`SPREAD_FLOOR`) and below the break, against the
  predicted log growth over the same window.
* Critical batch size (a batch-size axis): at the budget ``T_c`` = :data:`BUDGET_FACTOR` x the
  PREDICTED full-batch median break (a theory-only choice, so that every cell has a budget on
  its own time scale), ``P(B) = P(T <= T_c)``; the critical B is where ``P`` crosses 0.5,
  linear in log2 B between the grid's batch sizes (full batch at ``B = n_train``), measured
  (bootstrap 95% CI over networks) and predicted.
* Critical label noise (a label-noise axis): where ``P(broken within the steps)`` first
  crosses 0.5, linear in the noise, measured and predicted.
"""

from __future__ import annotations

import math

import numpy as np

from jaxsym.analysis import stats
from jaxsym.analysis.common import study_of
from jaxsym.analysis.predictions import cached

__all__ = ["analyse", "saddle_reference", "NOISE_AXES", "BUDGET_FACTOR", "SPREAD_FLOOR",
           "crossing", "network_agreement", "window_rates"]

#: the grid axes that carry symmetric noise (the section's x axis)
NOISE_AXES = ("batch_size", "label_noise")
#: the critical-batch-size budget, in units of the predicted full-batch median break
BUDGET_FACTOR = 1.1
#: unit spreads below this are at float64 rounding (no growth rate is read there)
SPREAD_FLOOR = 1e-12
#: the measured and predicted rates are compared over windows of at least this many steps
MIN_WINDOW = 100
#: per-network agreement of predicted and measured breaks: steps or relative
AGREE_STEPS, AGREE_REL = 2.0, 0.02
#: the toy's label-noise levels: the paper's five (0 - 0.8) and three beyond them
TOY_LEVELS = (0.0, 0.1, 0.2, 0.4, 0.8, 1.2, 1.6, 2.4)


def network_agreement(predicted, measured) -> np.ndarray:
    """Per network: predicted and measured breaks agree (see the module doc); inf = censored."""
    predicted, measured = np.asarray(predicted, float), np.asarray(measured, float)
    both = np.isfinite(predicted) & np.isfinite(measured)
    p, m = np.where(both, predicted, 0.0), np.where(both, measured, 0.0)
    close = np.abs(p - m) <= np.maximum(AGREE_STEPS, AGREE_REL * m)
    return (~np.isfinite(predicted) & ~np.isfinite(measured)) | (both & close)


def crossing(x, p, level: float = 0.5) -> float:
    """The first ``x`` at which the piecewise-linear ``p(x)`` (x ascending) crosses ``level``
    (either way; ``x`` itself where ``p`` equals it); nan if it never does."""
    x, p = np.asarray(x, float), np.asarray(p, float)
    for i in range(len(x)):
        if p[i] == level:
            return float(x[i])
        if i and (p[i - 1] - level) * (p[i] - level) < 0:
            return float(x[i - 1] + (level - p[i - 1]) * (x[i] - x[i - 1]) / (p[i] - p[i - 1]))
    return math.nan


def window_rates(spread, steps, broken_at, log_amplitude, min_window: int = MIN_WINDOW):
    """Measured and predicted growth rates (natural log per step), one per network (nan where
    no window exists): ``spread (n, n_ckpt)`` the recorded unit spread at checkpoint ``steps``,
    ``broken_at (n,)`` the measured break (inf: never), ``log_amplitude (n, n_ckpt)`` the
    predicted log break amplitude (its fall is the predicted growth)."""
    steps = np.asarray(steps, float)
    measured = np.full(len(spread), np.nan)
    predicted = np.full(len(spread), np.nan)
    for k in range(len(spread)):
        ok = ((spread[k] > SPREAD_FLOOR) & (steps >= 1) & (steps <= broken_at[k])
              & np.isfinite(log_amplitude[k]))
        idx = np.flatnonzero(ok)
        if idx.size < 2:
            continue
        t1 = idx[-1]
        early = idx[steps[idx] <= steps[t1] / 2]
        if early.size == 0 or steps[t1] - steps[early[-1]] < min_window:
            continue
        t0 = early[-1]
        width = steps[t1] - steps[t0]
        measured[k] = (math.log(spread[k, t1]) - math.log(spread[k, t0])) / width
        predicted[k] = -(log_amplitude[k, t1] - log_amplitude[k, t0]) / width
    return measured, predicted


def _point(d, pred, budget: int) -> dict:
    """One grid point: measured against predicted, network by network."""
    measured = np.where(d.broken.values, d.time_to_break.values, np.inf).astype(float)
    predicted = np.where(pred["time"] <= budget, pred["time"], np.inf)
    agree = network_agreement(predicted, measured)
    n, k = measured.size, int(np.isfinite(measured).sum())
    low, high = stats.wilson_interval(k, n)
    spread = d.spread.isel(layer=0).values
    rate_measured, rate_predicted = window_rates(spread, d.step.values, measured,
                                                 pred["log_amplitude"])
    return {"n": n, "k": k, "low": float(low), "high": float(high),
            "k_predicted": int(np.isfinite(predicted).sum()), "agree": int(agree.sum()),
            "measured": measured, "predicted": predicted,
            "median": stats.median_time(np.where(np.isfinite(measured), measured, budget),
                                        np.isfinite(measured)),
            "median_predicted": stats.median_time(
                np.where(np.isfinite(predicted), predicted, budget), np.isfinite(predicted)),
            "lyapunov": float(np.nanmedian(pred["rate"])) if np.isfinite(pred["rate"]).any()
            else math.nan,
            "lyapunov_q": tuple(float(q) for q in np.nanquantile(pred["rate"], [0.25, 0.75]))
            if np.isfinite(pred["rate"]).any() else (math.nan, math.nan),
            "rate_measured": rate_measured, "rate_predicted": rate_predicted,
            "final_spread": float(np.median(spread[:, -1]))}


def _positions(axis: str, values, n_train: int) -> np.ndarray:
    """x positions of the noise axis: log2 B (full batch at log2 n_train), or the noise."""
    if axis == "batch_size":
        return np.log2([v if v else n_train for v in values])
    return np.asarray(values, float)


def _bootstrap_crossing(x, measured_sets, budget, n_boot: int = 400, seed: int = 0):
    """95% bootstrap interval of the measured crossing (networks resampled per point)."""
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        p = [float(np.mean(m[rng.integers(0, m.size, m.size)] <= budget)) for m in measured_sets]
        draws.append(crossing(x, p))
    draws = np.asarray(draws)
    found = np.isfinite(draws)
    if found.mean() < 0.95:
        return (math.nan, math.nan)
    return tuple(float(q) for q in np.quantile(draws[found], [0.025, 0.975]))


def _cell(ds, axis, pred_of, saddle_rate, n_train) -> dict:
    """One cell (every grid axis but the noise axis fixed): its points and critical value."""
    budget = int(ds.attrs["steps"])
    values = [v.item() for v in ds[axis].values]
    order = np.argsort(_positions(axis, values, n_train))
    values = [values[i] for i in order]
    x = _positions(axis, values, n_train)
    points = [dict(value=v, **_point(ds.sel({axis: v}), pred_of(v), budget)) for v in values]
    cell = {"axis": axis, "points": points, "x": x, "budget": budget,
            "saddle_rate": saddle_rate}
    if axis == "batch_size":
        full = next((p for p in points if p["value"] in (0, n_train)), None)
        if full is None or not full["median_predicted"].reached:
            cell["critical"] = None
            return cell
        t_c = int(round(BUDGET_FACTOR * full["median_predicted"].median))
        cell["t_c"] = t_c
        p_measured = [float(np.mean(p["measured"] <= t_c)) for p in points]
        p_predicted = [float(np.mean(p["predicted"] <= t_c)) for p in points]
        critical = crossing(x, p_measured)
        predicted = crossing(x, p_predicted)
        ci = _bootstrap_crossing(x, [p["measured"] for p in points], t_c)
        cell.update(p_measured=p_measured, p_predicted=p_predicted,
                    critical={"measured": 2.0 ** critical, "predicted": 2.0 ** predicted,
                              "low": 2.0 ** ci[0], "high": 2.0 ** ci[1]})
    else:
        p_measured = [p["k"] / p["n"] for p in points]
        p_predicted = [p["k_predicted"] / p["n"] for p in points]
        ci = _bootstrap_crossing(x, [p["measured"] for p in points], budget)
        cell.update(p_measured=p_measured, p_predicted=p_predicted,
                    critical={"measured": crossing(x, p_measured),
                              "predicted": crossing(x, p_predicted),
                              "low": ci[0], "high": ci[1]})
    return cell


def _run(ds, run_dir) -> dict:
    from jaxsym.study import plan as study_plan
    from jaxsym.theory.predict import noisy_escape_times

    study = study_of(ds)
    axis = next(a for a in NOISE_AXES if a in ds.dims)
    pred = cached("noisy_escape", study, run_dir, noisy_escape_times)
    points = study_plan.grid_points(study)
    n_train = int(study.make_task(0).x_train.shape[0])
    others = [a for a in study.grid_axes if a != axis]
    cells = []
    for combo in dict.fromkeys(tuple((a, p[a]) for a in others) for p in points):
        fixed = dict(combo)
        sub = ds.sel({("loss_function" if a == "loss" else a): v for a, v in fixed.items()})

        def pred_of(value, fixed=fixed):
            return pred[next(g for g, p in enumerate(points)
                             if p[axis] == value and all(p[a] == v for a, v in fixed.items()))]

        static = tuple((a, v) for a, v in combo if a in ("activation", "loss", "optimizer"))
        saddle_rate = saddle_reference(pred, static, fixed, study)
        cells.append({"fixed": fixed, **_cell(sub, axis, pred_of, saddle_rate, n_train)})
    return {"ds": ds, "axis": axis, "cells": cells, "n_train": n_train}


def saddle_reference(pred, static, fixed, study):
    """The full-batch deterministic reference of a cell (``("saddle", categorical, lr)`` of
    :func:`jaxsym.theory.predict.noisy_escape_times`: the UNdecayed saddle's Hessian rate and
    the map's rate there), or None: not computed, or a cell with weight decay, which that
    reference does not describe."""
    if fixed.get("weight_decay", study.get("train.weight_decay")) > 0:
        return None
    lr = fixed.get("learning_rate", study.get("train.learning_rate"))
    return next((v for k, v in pred.items() if isinstance(k, tuple) and k[0] == "saddle"
                 and all(c in k[1] for c in static) and k[2] == lr), None)


def _toy(_study) -> dict:
    from jaxsym.theory.collapse_toy import toy_outcomes

    return toy_outcomes(noise=TOY_LEVELS)


def toy_numbers(run_dir=None, study=None) -> dict:
    """The two-GELU toy's outcomes with Wilson 95% CIs, and whether P(identical) is
    non-decreasing in the noise over the paper's levels (0 - 0.8) and over all levels (a drop
    counts only where the two Wilson intervals do not overlap)."""
    toy = cached("collapse_toy", study, run_dir, _toy) if study is not None else _toy(None)
    n = toy["seeds"]
    rows = []
    for i, noise in enumerate(toy["noise"]):
        row = {"noise": float(noise)}
        for what in ("identical", "dead", "collapsed"):
            k = int(toy[what][i])
            low, high = stats.wilson_interval(k, n)
            row[what] = (k / n, float(low), float(high))
        rows.append(row)

    def non_decreasing(sel):
        return all(b["identical"][2] >= a["identical"][1] for a, b in zip(sel, sel[1:]))

    paper = [r for r in rows if r["noise"] <= 0.8]
    return {"rows": rows, "seeds": n, "steps": toy["steps"],
            "monotone_paper": non_decreasing(paper), "monotone_all": non_decreasing(rows)}


def analyse(entries) -> dict:
    """``{"runs": [one per run: {"ds", "axis", "cells": [...]}], "toy": toy_numbers}`` (the
    toy is computed once, cached with the first label-noise run)."""
    runs = [_run(ds, run_dir) for ds, run_dir in entries]
    host = next(((ds, d) for ds, d in entries if "label_noise" in ds.dims), entries[0])
    return {"runs": runs, "toy": toy_numbers(host[1], study_of(host[0]))}
