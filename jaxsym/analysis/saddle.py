"""Numbers of the saddle sections: the measured log-law slope against the Hessian at the
collapsed saddle (``saddle_slope``), and its scaling with the layer width (``width_scaling``,
the saddle_slope network at widths m = 2..32 with lr scaled with m).

Contract: :func:`analyse_slope` and :func:`analyse_width` ``(entries) -> dict`` for
:mod:`jaxsym.reporting.saddle`; the theory (:func:`jaxsym.theory.predict.analyse_saddle`, the
linearised escape and the networks' bias deviations) is computed once per run and cached.
"""

from __future__ import annotations

import functools

import numpy as np

from jaxsym.analysis import stats
from jaxsym.analysis.common import squeeze_grid, study_of, study_sections, unit_roundoff
from jaxsym.analysis.predict import network_errors
from jaxsym.analysis.predictions import cached

__all__ = ["saddle_fits", "rounding_floor", "width_scaling", "analyse_slope", "analyse_width",
           "WIDTH_TOLERANCE", "ROUNDING_FLOOR_ROUNDOFFS"]

#: width-scaling target: predicted and measured slopes within this fraction
WIDTH_TOLERANCE = 0.02
#: the width-scaling slopes are fitted over sigma_b >= the decade of this many unit roundoffs
#: of the run's dtype (float64: 1e-12): below it the rounding of thousands of steps of
#: non-identical units is a deviation of the same order as the bias spread
ROUNDING_FLOOR_ROUNDOFFS = 1e4


def saddle_fits(ds) -> dict:
    """Log-law fits of the steps to break and to converge over every sigma_b of ``ds``."""
    ds = squeeze_grid(ds)
    sigma = np.broadcast_to(ds.sigma_b.values[:, None], ds.time_to_break.shape).ravel()
    return {name: stats.fit_log_law(sigma, ds[name].values.ravel(), ds[flag].values.ravel(),
                                    n_boot=1000)
            for name, flag in (("time_to_break", "broken"), ("time_to_converge", "converged"))}


def rounding_floor(dtype: str) -> float:
    """The smallest sigma_b the width-scaling fit uses: ``10**floor(log10(1e4 u))``, ``u`` the
    unit roundoff of ``dtype`` (float64: 1e-12, float32: 1e-4)."""
    return float(10.0 ** np.floor(np.log10(ROUNDING_FLOOR_ROUNDOFFS * unit_roundoff(dtype))))


def _width_theory(study) -> dict:
    """What the width-scaling row needs of the theory: the saddle at the collapsed point, the
    linearised escape and every network's bias deviation norm (draw 0)."""
    from jaxsym.theory import predict

    (_, escape), = predict.escape_predictions(study).items()
    return {"saddle": predict.analyse_saddle(study, require_reached=False, trajectory_steps=1),
            "escape": escape,
            "norms": predict.deviation_norms(study, range(study.get("seeds.count")))}


def _width_row(ds, study, theory) -> dict:
    analysis, prediction = theory["saddle"], theory["escape"]
    flat = squeeze_grid(ds)
    floor = rounding_floor(ds.attrs["dtype"])
    sigma = flat.sigma_b.values
    above = sigma >= floor * (1 - 1e-9)
    medians = np.array([prediction.median_time(float(s)) for s in sigma[above]])
    escape_slope = (float(np.polyfit(np.log10(1.0 / sigma[above]), medians, 1)[0])
                    if above.sum() >= 2 and np.all(np.isfinite(medians)) else None)
    times = flat.time_to_break.values
    fit = stats.fit_log_law(np.broadcast_to(sigma[:, None], times.shape).ravel(),
                            times.ravel(), flat.broken.values.ravel(),
                            sigma_range=(floor * (1 - 1e-9), float(sigma.max())), n_boot=1000)
    # every network against its own prediction T(sigma_b ||d||)
    errors = np.abs(network_errors(flat, study, prediction, theory["norms"]))
    measured = np.where(flat.broken.values, times, np.inf)
    ok = (errors <= np.maximum(2.0, 0.01 * measured)) | np.isnan(errors)
    return {"width": int(ds.attrs["layer_sizes"][1]), "lr": analysis.learning_rate,
            "lambda_min": analysis.spectrum.lambda_min,
            "multiplicity": analysis.spectrum.multiplicity,
            "reached": analysis.reached, "hessian_slope": analysis.slope,
            "escape_slope": escape_slope, "fit": fit, "floor": floor,
            "networks_ok": int(ok[above].sum()), "networks_above": int(ok[above].size),
            "error_above": float(np.nanmax(errors[above])),
            "error_below": (float(np.nanmax(errors[~above])) if (~above).any() else None),
            "seeds": int(ds.sizes["seed"])}


def width_scaling(entries) -> list[dict]:
    """One row per ``saddle_slope`` run (one per width m): the Hessian at the collapsed point
    (lambda_min, its multiplicity, m * lambda_min), the slope it predicts, the slope of the
    linearised escape's predicted medians over the run's sigma_b (least squares, as the
    measurement), the measured slope of the steps to break with its bootstrap CI, and every
    network against its own prediction."""
    rows = []
    for ds, run_dir in entries:
        study = study_of(ds)
        theory = cached("width_scaling", study, run_dir, _width_theory)
        rows.append(_width_row(ds, study, theory))
    return sorted(rows, key=lambda r: r["width"])


def _spread(ds) -> dict:
    """Quartiles over seeds of the steps to break and to converge, per sigma_b."""
    ds = squeeze_grid(ds)
    return {name: np.percentile(ds[name].values, [25, 50, 75], axis=-1)
            for name in ("time_to_break", "time_to_converge")}


def analyse_slope(entries) -> dict:
    """``{"runs": [{"ds", "analysis" (SaddleAnalysis), "fits", "finished" (fraction broken and
    converged), "quartiles", "curves"}]}``; ``curves``: the log-law of every result among
    ``entries`` (the ``saddle_slope`` runs and those the section also reads, escape, noise dose
    and bias-only) that trains the same network on the same data, stated by its small-sigma_b
    asymptote and curvature (:func:`jaxsym.analysis.loglaw.network_curves`)."""
    from jaxsym.analysis import loglaw
    from jaxsym.theory.predict import analyse_saddle

    runs = []
    own = [e for e in entries if e[0].attrs.get("report_section") == "saddle_slope"]
    for ds, run_dir in own:
        analysis = cached("saddle", study_of(ds), run_dir,
                          functools.partial(analyse_saddle, require_reached=False))
        flat = squeeze_grid(ds)
        activation = study_sections(ds)["model"]["activation"]
        runs.append({"ds": ds, "analysis": analysis, "fits": saddle_fits(ds),
                     "finished": float((flat.broken & flat.converged).mean()),
                     "quartiles": _spread(ds),
                     "curves": loglaw.network_curves(entries, activation,
                                                     loglaw.network_key(ds))})
    return {"runs": runs}


def analyse_width(entries) -> dict:
    """``{"rows": width_scaling rows, "tolerance", "floor_roundoffs"}``."""
    return {"rows": width_scaling(entries), "tolerance": WIDTH_TOLERANCE,
            "floor_roundoffs": ROUNDING_FLOOR_ROUNDOFFS}
