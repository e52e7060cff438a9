"""Numbers of the hardware-noise section: identical units (constant W, sigma_b = 0) under the
exact arithmetic and under the UNSAFE plain kernel (:data:`jaxsym.core.spec.KERNELS`), per
training dtype and activation: when twins first differ, P(broken), the time to break, and that
time read as an effective sigma_b.

Contract: :func:`analyse` ``(entries) -> dict`` for :mod:`jaxsym.reporting.hardware_noise`;
pure apart from the cached theory predictions (:func:`jaxsym.analysis.predictions.cached`).

Effective sigma_b of a network: the initial bias spread whose median break the linearised
escape of the same network (its own data draw) predicts at the step it broke
(:meth:`jaxsym.theory.escape.EscapePrediction.effective_sigma`); for a network that does not
break, the value at the budget, an upper bound. A cell's effective sigma_b is the median over
its networks (:func:`_effective`). The plain kernel's kicks are sporadic, so the readings of
one cell spread over several decades.
"""

from __future__ import annotations

import math

import numpy as np

from jaxsym.analysis import stats
from jaxsym.analysis.common import study_of, unit_roundoff
from jaxsym.analysis.predictions import cached

__all__ = ["analyse", "cell_numbers", "first_asymmetry", "replicas_differ", "network_sigmas"]


def first_asymmetry(cell) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, seen)`` per network (``cell`` a Dataset over ``seed`` with ``spread(seed,
    step, layer)``): the first checkpoint step at which any hidden layer's unit spread is > 0
    (twins differ in some bit), and whether there is one (else the step is the budget)."""
    differ = (cell.spread.values > 0).any(axis=-1)  # (seed, step)
    seen = differ.any(axis=-1)
    steps = np.where(seen, cell.step.values[np.argmax(differ, axis=-1)], cell.attrs["steps"])
    return steps.astype(np.int64), seen


def replicas_differ(cell) -> tuple[int, int]:
    """``(differ, draws)``: of the data draws with more than one seed, how many have seeds
    (replicas: same init, data and arithmetic, sigma_b = 0) whose final loss or step to break
    differ. Deterministic kernels give 0 (a CPU); a non-deterministic reduction (atomics on a
    GPU) shows here. ``draws`` is 0 with one seed per draw."""
    draw = cell.draw.values
    differ = total = 0
    for k in np.unique(draw):
        members = draw == k
        if members.sum() < 2:
            continue
        total += 1
        final = cell.final_loss.values[members]
        times = cell.time_to_break.values[members]
        differ += int(np.unique(final.view(np.uint8).reshape(len(final), -1), axis=0).shape[0]
                      > 1 or np.unique(times).size > 1)
    return differ, total


def network_sigmas(cell, prediction) -> np.ndarray:
    """Each network's effective sigma_b ``(seed,)``: its own data draw's prediction read at
    its step to break (:meth:`jaxsym.theory.escape.EscapePrediction.effective_sigma`), or at
    the budget for a network that does not break (then an upper bound); nan where the
    prediction has no finite value."""
    draws = getattr(prediction, "draws", (prediction,))
    draw = cell.draw.values
    return np.array([draws[d].effective_sigma(int(t))
                     for d, t in zip(draw, cell.time_to_break.values)])


def _effective(prediction, cell) -> tuple[float, tuple[float, float], bool]:
    """``(sigma, (low, high), bound)``: the median effective sigma_b over the cell's networks
    (:func:`network_sigmas`), by Kaplan-Meier on ``-log10 sigma`` (a network that does not
    break is censored at its bound), with its 95% interval. Where fewer than half of the
    networks break that median is not reached, and the median of every network's value (its
    reading or its bound) is an upper bound (``bound`` True; every true value lies at or below
    its network's value). nan without a prediction."""
    nan = (math.nan, (math.nan, math.nan), False)
    if prediction is None:
        return nan
    sigmas = network_sigmas(cell, prediction)
    ok = np.isfinite(sigmas) & (sigmas > 0)
    if not ok.any():
        return nan
    x, broken = -np.log10(sigmas[ok]), cell.broken.values[ok]
    median = stats.median_time(x, broken)
    # the Kaplan-Meier median only where at least half break: the networks that do not are
    # censored at their bound, and when most are, the estimate rests on a few readings
    if median.reached and broken.mean() >= 0.5:
        return (10.0 ** -median.median, (10.0 ** -median.high, 10.0 ** -median.low), False)
    return float(np.median(sigmas[ok])), (math.nan, math.nan), True


def cell_numbers(cell, prediction=None) -> dict:
    """One (kernel, activation) cell of a run: networks ``n``; ``k`` broken with its Wilson 95%
    interval ``low, high``; ``asymmetric``: networks whose twins differ at some checkpoint, and
    ``first``: the Kaplan-Meier median of that first step; ``break``: the KM median step to
    break; ``sigma_eff``, the median effective sigma_b over the networks (``sigma_interval``
    its 95% interval; ``bound``: an upper bound, :func:`_effective`) and ``sigma_eff / u``
    (``per_u``, ``u`` the unit roundoff of the run's dtype); ``replicas``: :func:`replicas_differ`."""
    n, k = cell.sizes["seed"], int(cell.broken.sum())
    low, high = stats.wilson_interval(k, n)
    steps, seen = first_asymmetry(cell)
    median = stats.median_time(cell.time_to_break.values, cell.broken.values)
    sigma, interval, bound = _effective(prediction, cell)
    return {"n": n, "k": k, "low": float(low), "high": float(high),
            "asymmetric": int(seen.sum()), "first": stats.median_time(steps, seen),
            "break": median, "sigma_eff": sigma, "sigma_interval": interval, "bound": bound,
            "per_u": sigma / unit_roundoff(cell.attrs["dtype"]),
            "replicas": replicas_differ(cell)}


def _predictions(ds, run_dir) -> dict:
    """``{activation: PooledPrediction}`` of the run's network (one per data draw; the same
    maths for both kernels), cached next to the results; {} where the theory does not apply."""
    from jaxsym.theory.predict import pooled_escape

    try:
        predictions = cached("pooled_escape", study_of(ds), run_dir, pooled_escape)
    except ValueError:
        return {}
    out = {}
    for (categorical, _), prediction in predictions.items():
        out.setdefault(dict(categorical).get("activation", str(ds.attrs.get("activation", ""))),
                       prediction)
    return out


def _curves(cell) -> dict:
    """Fractions of networks with differing twins (at the checkpoints, where the spread is
    recorded) and broken (at every step where the fraction changes), by step."""
    steps, seen = first_asymmetry(cell)
    grid = cell.step.values
    t_break, broken = cell.time_to_break.values, cell.broken.values
    fine = np.unique(np.concatenate([[0, cell.attrs["steps"]], t_break[broken]]))
    return {"step": grid,
            "asymmetric": np.array([np.mean(seen & (steps <= t)) for t in grid]),
            "break_step": fine,
            "broken": np.array([np.mean(broken & (t_break <= t)) for t in fine])}


def analyse(entries) -> dict:
    """``{"runs": [{"ds", "dtype", "cells": [{"kernel", "activation", **cell_numbers,
    "curves"}]}]}``, runs in the order float64, float32, bfloat16 (coarser rounding last)."""
    runs = []
    for ds, run_dir in entries:
        predictions = _predictions(ds, run_dir)
        acts = [str(a) for a in ds.activation.values] if "activation" in ds.dims else [
            str(ds.attrs.get("activation", ""))]
        kernels = [str(k) for k in ds.kernel.values] if "kernel" in ds.dims else ["exact"]
        cells = []
        for kernel in kernels:
            for act in acts:
                cell = ds
                if "kernel" in ds.dims:
                    cell = cell.sel(kernel=kernel)
                if "activation" in ds.dims:
                    cell = cell.sel(activation=act)
                cells.append({"kernel": kernel, "activation": act,
                              **cell_numbers(cell, predictions.get(act)),
                              "curves": _curves(cell)})
        runs.append({"ds": ds, "dtype": ds.attrs["dtype"], "cells": cells})
    order = {"float64": 0, "float32": 1, "bfloat16": 2}
    runs.sort(key=lambda r: order.get(r["dtype"], 3))
    return {"runs": runs}
