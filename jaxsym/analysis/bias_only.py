"""Numbers of the bias-only section: P(broken) and the time to converge against sigma_b, per
(experiment, weight mode, activation), with the log-law fits.

Contract: :func:`analyse` ``(entries) -> dict`` of labelled numbers for
:mod:`jaxsym.reporting.bias_only` (``entries``: ``[(dataset, run_dir)]`` of results whose grid
has ``weight_mode``, ``sigma_b`` and ``activation`` axes); pure, no JAX.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxsym import analysis
from jaxsym.analysis import stats
from jaxsym.analysis.calibrate import ACCURACY_MARGIN, LOSS_FACTOR
from jaxsym.analysis.common import (is_classification, loss_of, rounding_limit, select_mode,
                                    study_of, test_score, weight_modes)

__all__ = ["P_TARGET", "FIT_SIGMA_RANGE", "fit_slopes", "summarize", "theory_rows", "analyse",
           "survival_activation", "survival_curves", "collapsed_learns"]

#: the P(broken) the "smallest sigma_b that breaks" column asks for
P_TARGET = 0.9
#: the small-sigma regime where the log-law is fitted
FIT_SIGMA_RANGE = (1e-8, 1e-2)


def fit_slopes(ds) -> dict:
    """Log-law fits ``T = a + b log10(1/sigma_b)`` per (weight mode, activation), over the
    sigma_b values of :data:`FIT_SIGMA_RANGE` at or above the rounding limit of the run's dtype
    (:func:`jaxsym.analysis.common.rounding_limit`) where at least 90% of the networks converged
    (censored runs would bias the medians); missing when fewer than 3 such values exist."""
    fits = {}
    sigma_range = (max(FIT_SIGMA_RANGE[0], rounding_limit(ds.attrs["dtype"])), FIT_SIGMA_RANGE[1])
    for mode in weight_modes(ds):
        sub = select_mode(ds, mode)
        for act in sub.activation.values:
            fit = analysis.fit_curve(sub.sel(activation=act), sigma_range=sigma_range,
                                     min_finished=0.9, n_boot=1000)
            if fit is not None:
                fits[(ds.attrs["name"], mode, str(act))] = fit
    return fits


def summarize(ds, fits=None) -> list[dict]:
    """One row per (weight mode, activation) of a bias-only dataset.

    Columns: P(broken) at sigma_b = 0 and at the largest sigma_b (with Wilson CIs), the same for
    P(functionally broken) (the units compute different functions at the end), the smallest
    sigma_b > 0 with P(broken) >= 0.9 (observed; and with its Wilson LOWER bound >= 0.9), the
    logistic sigma_90 with its bootstrap CI (:func:`stats.fit_sigma_p`), the median steps to
    converge at the largest sigma_b and at the Glorot baseline (sigma_b = 0), and the fitted
    log-law slope with its bootstrap CI. What the networks learned, next to whether their
    symmetry broke: P(converged) at sigma_b = 0 (identical units: the collapsed network) with
    its Wilson CI, and the test score (:func:`jaxsym.analysis.common.test_score`: accuracy for
    classification, test loss for regression) at sigma_b = 0, at the largest sigma_b and of the
    Glorot baseline.
    """
    fits = fit_slopes(ds) if fits is None else fits
    budget = ds.attrs["steps"]
    rows = []
    base_ds = ds.sel(weight_mode="glorot") if "glorot" in ds.weight_mode.values else None
    for mode in weight_modes(ds):
        sub = select_mode(ds, mode)
        sigma = sub.sigma_b.values
        for act in sub.activation.values:
            a = sub.sel(activation=act)
            n = a.sizes["seed"]
            k = a.broken.sum("seed").values
            low, high = stats.wilson_interval(k, np.full_like(k, n))
            p = k / n
            kf = a.functionally_broken.sum("seed").values if "functionally_broken" in a \
                else None
            functional = None if kf is None else (kf / n, *stats.wilson_interval(
                kf, np.full_like(kf, n)))
            ok = [s for s, q in zip(sigma, p) if s > 0 and q >= P_TARGET]
            wilson_ok = [s for s, lo in zip(sigma, low) if s > 0 and lo >= P_TARGET]
            positive = sigma > 0
            broken = a.broken.transpose("sigma_b", "seed").values[positive]
            sigma_fit = stats.fit_sigma_p(np.repeat(sigma[positive], n), broken.ravel(),
                                          P_TARGET)
            top = a.sel(sigma_b=sigma.max())
            med = stats.median_time(top.time_to_converge.values, top.converged.values)
            row = {"experiment": ds.attrs["name"], "loss": loss_of(ds), "weight_mode": mode,
                   "activation": str(act), "seeds": n, "budget": budget,
                   "dtype": ds.attrs["dtype"],
                   "p_broken_zero": (p[0], low[0], high[0]) if sigma[0] == 0 else None,
                   "p_broken_top": (p[-1], low[-1], high[-1]), "sigma_top": float(sigma.max()),
                   "p_functional_zero": (None if functional is None or sigma[0] != 0 else
                                         tuple(x[0] for x in functional)),
                   "p_functional_top": (None if functional is None else
                                        tuple(x[-1] for x in functional)),
                   "sigma_p90": min(ok) if ok else None,
                   "sigma_p90_wilson": min(wilson_ok) if wilson_ok else None,
                   "sigma_90_fit": sigma_fit,
                   "p_converged_top": float(top.converged.mean()),
                   "median_top": med, "fit": fits.get((ds.attrs["name"], mode, str(act))),
                   "classification": is_classification(ds), "test_top": test_score(top),
                   "p_converged_zero": None, "test_zero": None, "test_glorot": None}
            if sigma[0] == 0:
                zero = a.sel(sigma_b=0.0)
                kc = int(zero.converged.sum())
                row["p_converged_zero"] = (kc / n, *stats.wilson_interval(kc, n))
                row["test_zero"] = test_score(zero)
            if base_ds is not None:
                b = base_ds.sel(activation=act, sigma_b=0.0)
                row["median_glorot"] = stats.median_time(b.time_to_converge.values,
                                                          b.converged.values)
                row["test_glorot"] = test_score(b)
                row["p_converged_glorot"] = float(b.converged.mean())
            row["collapsed_learns"] = collapsed_learns(row)
            rows.append(row)
    return rows


def collapsed_learns(row) -> bool:
    """Whether the identical units (sigma_b = 0, symmetry intact) learned the task anyway: most
    of them reached the loss threshold, or the Glorot baseline learned it (most of its networks
    reached the threshold) and their mean test score meets the calibration's target against it
    (accuracy within :data:`ACCURACY_MARGIN` of Glorot's, relative; regression: test loss at
    most :data:`LOSS_FACTOR` x Glorot's geometric mean). Matching a baseline that failed too
    (a linear network on xor) is not learning."""
    if row["p_converged_zero"] is None or row["p_broken_zero"] is None \
            or row["p_broken_zero"][0] > 0:
        return False
    if row["p_converged_zero"][0] >= 0.5:
        return True
    zero, glorot = row["test_zero"], row["test_glorot"]
    if glorot is None or row.get("p_converged_glorot", 0.0) < 0.5 \
            or not (np.isfinite(zero.mean) and np.isfinite(glorot.mean)):
        return False
    if row["classification"]:
        return bool(zero.mean >= (1 - ACCURACY_MARGIN) * glorot.mean)
    return bool(zero.mean <= LOSS_FACTOR * glorot.mean)


def survival_activation(ds) -> str:
    """The activation the survival figure shows: tanh where the grid has it, else its first."""
    names = [str(a) for a in np.atleast_1d(ds.activation.values)]
    return "tanh" if "tanh" in names else names[0]


def survival_curves(ds, activation: str | None = None, mode: str = "constant",
                    sigmas=None) -> list:
    """Kaplan-Meier curves of the time to converge at a few sigma_b (default every third) for
    ``activation`` (default :func:`survival_activation`): ``[(sigma_b, KaplanMeier)]``."""
    activation = activation or survival_activation(ds)
    sub = select_mode(ds, mode).sel(activation=activation)
    sigmas = sigmas if sigmas is not None else sub.sigma_b.values[::3]
    return [(s, stats.kaplan_meier(sub.sel(sigma_b=s).time_to_converge.values,
                                   sub.sel(sigma_b=s).converged.values)) for s in sigmas]


def _panel(ds, mode) -> dict:
    """The figure numbers of one (experiment, weight mode) panel: P(broken) and P(converged by
    the budget) with Wilson bounds and the KM median steps to converge per (activation,
    sigma_b), and the Glorot baseline's median and P(converged) per activation (None without
    one)."""
    sub = select_mode(ds, mode)
    baseline = None
    if "weight_mode" in ds.dims and "glorot" in ds.weight_mode.values:
        baseline = {str(act): stats.median_time(
            ds.sel(weight_mode="glorot", activation=act, sigma_b=0.0).time_to_converge.values,
            ds.sel(weight_mode="glorot", activation=act, sigma_b=0.0).converged.values)
            for act in sub.activation.values}
    glorot_p = None
    if baseline is not None:
        glorot_p = {str(act): float(ds.sel(weight_mode="glorot", activation=act,
                                           sigma_b=0.0).converged.mean())
                    for act in sub.activation.values}
    return {"ds": ds, "mode": mode, "p_broken": analysis.p_broken(sub),
            "p_converged": analysis.p_event(sub, "converged"),
            "converge": analysis.median_time(sub, "time_to_converge"), "glorot": baseline,
            "glorot_p_converged": glorot_p}


def _constant_study(study):
    """The study restricted to its constant-weight cells (the ``weight_mode`` grid axis
    dropped; the config's scalar ``init.weight_mode`` is then the mode)."""
    return dataclasses.replace(study, grid=tuple((axis, values) for axis, values in study.grid
                                                 if axis != "weight_mode"))


def theory_rows(ds, run_dir=None):
    """:func:`jaxsym.theory.predict.classify_study` on the constant-W cells of a bias-only
    study, next to the measured P(hidden layer 1 broken) (the rows of
    :func:`jaxsym.analysis.classify.classification_rows`), cached next to the results like every
    prediction; or a string saying why there is none (no constant-W cells, minibatch training:
    the theory follows the deterministic full-batch trajectory)."""
    from jaxsym.analysis.classify import classification_rows
    from jaxsym.analysis.predictions import cached
    from jaxsym.theory.predict import classify_study

    study = study_of(ds)
    modes = dict(study.grid).get("weight_mode", (study.get("init.weight_mode"),))
    if "constant" not in modes or study.get("init.weight_mode") != "constant":
        return "no constant-weight cells"
    if study.get("train.batch_size") or "batch_size" in study.grid_axes:
        return ("minibatch training: the theory follows the deterministic full-batch "
                "trajectory")
    predictions = cached("classify_constant", _constant_study(study), run_dir, classify_study)
    return classification_rows(select_mode(ds, "constant"), predictions)


def analyse(entries) -> dict:
    """``{"datasets", "fits", "rows" ({experiment: summarize rows}), "panels" (one per
    (experiment, weight mode)), "survival" ({experiment: survival_curves}), "theory"
    ({experiment: theory_rows})}``."""
    datasets = [ds for ds, _ in entries]
    fits = {}
    for ds in datasets:
        fits.update(fit_slopes(ds))
    return {"datasets": datasets, "fits": fits,
            "rows": {ds.attrs["name"]: summarize(ds, fits) for ds in datasets},
            "panels": [_panel(ds, m) for ds in datasets for m in weight_modes(ds)],
            "survival": {ds.attrs["name"]: survival_curves(ds) for ds in datasets},
            "theory": {ds.attrs["name"]: theory_rows(ds, run_dir) for ds, run_dir in entries}}
