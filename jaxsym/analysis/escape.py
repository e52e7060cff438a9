"""Numbers of the dtype-floor section: the escape from the symmetric saddle in float64,
float32 and bfloat16 (P(broken), times, the floor sigma_b* set by the unit roundoff, and the
log-law above it).

Contract: :func:`analyse` ``(entries) -> dict`` for :mod:`jaxsym.reporting.escape`; pure.
The rounding rule: cells within :data:`ESCAPE_FIT_ABOVE_U` unit roundoffs of the dtype's
floor are not conclusions (their asymmetry is partly a rounding residue that differs between
CPUs).
"""

from __future__ import annotations

import numpy as np

from jaxsym.analysis import stats
from jaxsym.analysis.common import ROUNDING_ROUNDOFFS, squeeze_grid, unit_roundoff

__all__ = ["ESCAPE_FIT_ABOVE_U", "dtype_floor", "escape_fit", "analyse"]

#: the escape log-law is fitted from this many unit roundoffs up (the report's one rounding rule,
#: :data:`jaxsym.analysis.common.ROUNDING_ROUNDOFFS`)
ESCAPE_FIT_ABOVE_U = ROUNDING_ROUNDOFFS


def dtype_floor(ds) -> float:
    """sigma_b*: the largest positive sigma_b such that every sigma_b <= it (and 0) has
    P(broken) = 0 within the budget, i.e. behaves exactly like identical units; 0 if even the
    smallest positive sigma_b breaks, nan if sigma_b = 0 itself breaks."""
    p = ds.broken.mean("seed")
    sigmas = np.sort(ds.sigma_b.values)
    if 0.0 in sigmas and float(p.sel(sigma_b=0.0)) > 0:
        return float("nan")
    floor = 0.0
    for s in sigmas[sigmas > 0]:
        if float(p.sel(sigma_b=s)) > 0:
            break
        floor = float(s)
    return floor


def escape_fit(ds):
    """``(fit, sigmas)``: the log-law of the time to break over the escape cells with
    ``100 u <= sigma_b <= 1e-2`` and P(broken) >= 0.9 (``(None, sigmas)`` if < 3 cells)."""
    ds = squeeze_grid(ds)
    low = ESCAPE_FIT_ABOVE_U * unit_roundoff(ds.attrs["dtype"])
    sigmas = sorted(float(s) for s in ds.sigma_b.values if low <= s <= 1e-2
                    and float(ds.broken.sel(sigma_b=s).mean()) >= 0.9)
    if len(sigmas) < 3:
        return None, sigmas
    a = ds.sel(sigma_b=sigmas)
    sig = np.broadcast_to(a.sigma_b.values[:, None], a.broken.shape)
    return stats.fit_log_law(sig.ravel(), a.time_to_break.values.ravel(),
                             a.broken.values.ravel(), n_boot=1000), sigmas


def _cells(ds) -> list[dict]:
    cells = []
    for s in ds.sigma_b.values:
        a = ds.sel(sigma_b=s)
        n, k = a.sizes["seed"], int(a.broken.sum())
        low, high = stats.wilson_interval(k, n)
        cells.append({"sigma_b": float(s), "n": n, "k": k, "low": low, "high": high,
                      "break": stats.median_time(a.time_to_break.values, a.broken.values),
                      "converge": stats.median_time(a.time_to_converge.values,
                                                    a.converged.values)})
    return cells


def _curves(ds) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """``(sigma_b, median spread, median diversity)`` of hidden layer 1 per checkpoint."""
    return [(float(s), ds.spread.sel(sigma_b=s).isel(layer=0).median("seed").values,
             ds.diversity.sel(sigma_b=s).isel(layer=0).median("seed").values)
            for s in ds.sigma_b.values]


def analyse(entries) -> dict:
    """``{"first" (the first run, unsqueezed: its setup is shown), "runs": [{"ds" (squeezed),
    "dtype", "u", "floor", "fit", "fit_sigmas", "cells", "curves"}] (sorted by dtype),
    "above_u"}``."""
    runs = []
    for ds in sorted((squeeze_grid(ds) for ds, _ in entries), key=lambda d: d.attrs["dtype"]):
        fit, above = escape_fit(ds)
        runs.append({"ds": ds, "dtype": ds.attrs["dtype"], "u": unit_roundoff(ds.attrs["dtype"]),
                     "floor": dtype_floor(ds), "fit": fit, "fit_sigmas": above,
                     "cells": _cells(ds), "curves": _curves(ds)})
    return {"first": entries[0][0], "runs": runs, "above_u": ESCAPE_FIT_ABOVE_U}
