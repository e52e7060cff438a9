"""Numbers of the noise-dose section: P(broken) and times against a per-step relative
parameter noise at sigma_b = 0 (noise that BREAKS the symmetry, an emulated non-deterministic
kernel), per activation, with the smallest dose that breaks and the log-law over the doses.

Contract: :func:`analyse` ``(entries) -> dict`` for :mod:`jaxsym.reporting.noise_dose`; pure.
"""

from __future__ import annotations

import numpy as np

from jaxsym.analysis import stats
from jaxsym.analysis.common import below_rounding, rounding_limit, study_of
from jaxsym.analysis.predictions import cached

__all__ = ["analyse", "dose_curve"]

#: the dose log-law is fitted over doses up to this size with P(broken) >= 0.9 (and from the
#: rounding limit up, :func:`jaxsym.analysis.common.rounding_limit`)
FIT_MAX_NOISE = 1e-4


def dose_curve(d, activation, dtype: str = "float64", prediction=None) -> dict:
    """One activation's dose-response: per noise level P(broken) (Wilson 95%) and the KM
    medians of the steps to break and to converge; the smallest dose with P >= 0.9 (and
    whether it lies below the rounding limit of ``dtype``: not a conclusion), P at noise 0 and
    the log-law fit over the doses from the rounding limit to :data:`FIT_MAX_NOISE` (None with
    fewer than 3)."""
    dose, levels = None, []
    for v in d.noise.values:
        a = d.sel(noise=v)
        n, k = a.sizes["seed"], int(a.broken.sum())
        low, high = stats.wilson_interval(k, n)
        if dose is None and k / n >= 0.9:
            dose = float(v)
        median = stats.median_time(a.time_to_break.values, a.broken.values)
        levels.append({"noise": v, "n": n, "k": k, "low": low, "high": high,
                       "sigma_eff": (prediction.effective_sigma(median.median)
                                     if prediction is not None and median.reached
                                     else float("nan")),
                       "break": median,
                       "converge": stats.median_time(a.time_to_converge.values,
                                                     a.converged.values)})
    p_zero = float(d.sel(noise=0.0).broken.mean()) if 0.0 in d.noise.values else float("nan")
    ok = [float(v) for v in d.noise.values
          if rounding_limit(dtype) <= v <= FIT_MAX_NOISE
          and float(d.sel(noise=v).broken.mean()) >= 0.9]
    fit = None
    if len(ok) >= 3:
        a = d.sel(noise=ok)
        sig = np.broadcast_to(a.noise.values[:, None], a.broken.shape)
        fit = stats.fit_log_law(sig.ravel(), a.time_to_break.values.ravel(),
                                a.broken.values.ravel(), n_boot=1000)
    return {"activation": activation, "levels": levels, "dose": dose, "p_zero": p_zero,
            "dose_below_rounding": below_rounding(dose, dtype),
            "fit_noise": ok, "fit": fit}


def _predictions(ds, run_dir) -> dict:
    """``{activation: EscapePrediction}`` of the run's network without noise (its noise = 0
    configuration, cached next to the results); {} where the theory does not apply."""
    from jaxsym.theory.predict import escape_predictions

    try:
        predictions = cached("escape", study_of(ds), run_dir, escape_predictions)
    except ValueError:
        return {}
    out = {}
    for (categorical, _), prediction in predictions.items():
        out[dict(categorical).get("activation", str(ds.attrs.get("activation", "")) or None)] \
            = prediction
    return out


def _figure(d) -> dict:
    n = d.sizes["seed"]
    k = d.broken.sum("seed").values
    low, high = stats.wilson_interval(k, n)
    med = [stats.median_time(d.sel(noise=v).time_to_break.values,
                             d.sel(noise=v).broken.values).median for v in d.noise.values]
    return {"p": k / n, "low": low, "high": high, "median_break": med}


def analyse(entries) -> dict:
    """``{"runs": [{"ds", "curves" (one :func:`dose_curve` per activation), "figure"
    (per activation: P, Wilson bounds, median steps to break per noise level)}]}``."""
    runs = []
    for ds, run_dir in entries:
        acts = [str(a) for a in ds.activation.values] if "activation" in ds.dims else [None]
        parts = [(act, ds.sel(activation=act) if act is not None else ds) for act in acts]
        predictions = _predictions(ds, run_dir)
        runs.append({"ds": ds, "curves": [dose_curve(d, act, ds.attrs["dtype"],
                                                     predictions.get(act))
                                          for act, d in parts],
                     "figure": [(act, _figure(d)) for act, d in parts]})
    return {"runs": runs}
