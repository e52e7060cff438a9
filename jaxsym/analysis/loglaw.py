"""The log-law slope stated once: its small-sigma_b asymptote, a curvature check, and the
agreement of the experiments that train the same network.

The log-law ``T(sigma) = a + b log10(1/sigma)`` (T the steps to break) is an ASYMPTOTE: it
holds once the bias deviation is small enough that the escape starts only after the symmetric
trajectory has reached the collapsed saddle, where it grows by a constant factor per step. At
larger sigma_b the units separate on the way there, where the growth rate is larger, and the
local slope falls. A straight line fitted over a window where the curve bends gives a number
that depends on the window, with a bootstrap CI that ignores that choice. So each curve is
stated by:

* **the asymptote**: the least-squares slope over its :data:`ASYMPTOTE_CELLS` smallest cells that
  are conclusions (at or above the rounding limit,
  :func:`jaxsym.analysis.common.rounding_limit`, and >= 90% broken), with the stratified
  bootstrap CI of :func:`jaxsym.analysis.stats.fit_log_law`;
* **the window fit**: the same over every such cell up to :data:`WINDOW_MAX`;
* **the curvature check**: a quadratic ``T = a + b x + c x^2`` in ``x = log10(1/sigma)`` over
  the window's per-cell medians; the local slope changes by ``2 c (x_max - x_min)`` across
  the window, with a stratified bootstrap 95% CI. The curve **bends** when that CI excludes 0:
  then the window fit is not the log-law slope, the asymptote is.

Contract: :func:`curve` ``(x, times, events, limit)`` and :func:`network_curves` ``(entries)``,
pure (no JAX).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from jaxsym.analysis import stats
from jaxsym.analysis.common import rounding_limit, study_sections
from jaxsym.core.records import NETWORK_DIMS

__all__ = ["ASYMPTOTE_CELLS", "WINDOW_MAX", "LogLawCurve", "curve", "network_key",
           "network_curves"]

#: the asymptote is fitted over this many smallest cells that are conclusions
ASYMPTOTE_CELLS = 3
#: the window fit and the curvature check use cells up to this sigma_b (or noise)
WINDOW_MAX = 1e-2
#: the share of networks that must have broken at a cell for its median to enter a fit
MIN_BROKEN = 0.9


class LogLawCurve(NamedTuple):
    """One curve's log-law: ``asymptote`` and ``window`` (:class:`stats.LogLawFit`, None with
    too few cells), ``curvature`` (the change of the local slope across the window, steps per
    decade, with its 95% CI; None with fewer than 4 cells), ``bends`` (that CI excludes 0),
    and ``cells`` (the x values used, ascending)."""

    asymptote: stats.LogLawFit | None
    window: stats.LogLawFit | None
    curvature: tuple[float, float, float] | None
    bends: bool
    cells: tuple[float, ...]


def _curvature(levels, groups, n_boot: int, seed: int):
    x = np.log10(1.0 / np.asarray(levels))
    span = x.max() - x.min()
    medians = np.array([np.median(g) for g in groups])
    rng = np.random.default_rng(seed)
    boot = np.empty((levels.size, n_boot))
    for j, g in enumerate(groups):
        boot[j] = np.median(g[rng.integers(0, g.size, size=(n_boot, g.size))], axis=1)
    c = np.polyfit(x, medians, 2)[0]
    cs = np.polyfit(x, boot, 2)[0]
    low, high = np.quantile(2 * cs * span, [0.025, 0.975])
    return float(2 * c * span), float(low), float(high)


def curve(x, times, events, limit: float, n_boot: int = 1000, seed: int = 0) -> LogLawCurve:
    """The log-law of one curve.

    ``x`` (sigma_b or relative noise, > 0), ``times`` and bool ``events`` (broken): shape
    ``(n,)``, one entry per network; ``limit``: the rounding limit (cells below it are not
    used). A cell enters when ``limit <= x <= WINDOW_MAX`` and at least :data:`MIN_BROKEN` of
    its networks broke; only finished networks give its median."""
    x = np.asarray(x, float).ravel()
    t = np.asarray(times, float).ravel()
    e = np.asarray(events, bool).ravel()
    levels = np.unique(x[(x > 0) & (x >= limit * (1 - 1e-9)) & (x <= WINDOW_MAX)])
    levels = np.array([lv for lv in levels if e[x == lv].mean() >= MIN_BROKEN])
    if levels.size < ASYMPTOTE_CELLS:
        return LogLawCurve(None, None, None, False, tuple(levels))
    keep = np.isin(x, levels) & e

    def fit(cells):
        return stats.fit_log_law(x[keep], t[keep], sigma_range=(cells[0], cells[-1]),
                                 n_boot=n_boot, seed=seed)

    asymptote = fit(levels[:ASYMPTOTE_CELLS])
    window = fit(levels) if levels.size > ASYMPTOTE_CELLS else asymptote
    curvature = None
    if levels.size >= 4:
        curvature = _curvature(levels, [t[keep & (x == lv)] for lv in levels], n_boot, seed)
    bends = curvature is not None and not curvature[1] <= 0.0 <= curvature[2]
    return LogLawCurve(asymptote, window, curvature, bool(bends), tuple(float(v) for v in levels))


def network_key(ds) -> tuple:
    """What makes two results train the same network on the same training set (the weight
    value, the budget, the test set and the dtype aside: the collapsed saddle, and with it the
    asymptote, does not depend on them): task name, seed and training-set options, depth and
    width, loss, optimizer, learning rate and batch size."""
    sections = study_sections(ds)
    task = {k: v for k, v in sections["task"].items() if k not in ("n_test", "draws")}
    train = sections["train"]
    return (tuple(sorted(task.items())), sections["model"]["depth"], sections["model"]["width"],
            train["loss"], train["optimizer"], float(train["learning_rate"]),
            int(train.get("batch_size", 0)))


def _variable(ds) -> str | None:
    for axis in ("sigma_b", "noise"):
        if axis in ds.dims and ds.sizes[axis] > 1:
            return axis
    return None


def network_curves(entries, activation: str, key: tuple) -> list[dict]:
    """The log-law curve of every result in ``entries`` (``[(dataset, run_dir)]``) that trains
    network ``key`` (:func:`network_key`) with ``activation``: its constant-weight (or the
    config's own) cells, per dtype, against sigma_b or the noise dose. Rows: ``experiment``,
    ``variable`` ("sigma_b" or "noise"), ``dtype``, ``weight_value``, ``curve``
    (:class:`LogLawCurve`)."""
    rows = []
    for ds, _ in entries:
        variable = _variable(ds)
        if variable is None or "time_to_break" not in ds or network_key(ds) != key:
            continue
        sections = study_sections(ds)
        sub = ds
        if "weight_mode" in sub.dims:
            if "constant" not in sub.weight_mode.values:
                continue
            sub = sub.sel(weight_mode="constant")
        elif sections["init"]["weight_mode"] not in ("constant",):
            continue
        if "activation" in sub.dims:
            if activation not in sub.activation.values:
                continue
            sub = sub.sel(activation=activation)
        elif sections["model"]["activation"] != activation:
            continue
        grid = [d for d in sub.dims if d not in NETWORK_DIMS and d != variable]
        if any(sub.sizes[d] > 1 for d in grid):  # another grid axis: not one curve
            continue
        sub = sub.squeeze(grid, drop=True)
        xs = np.broadcast_to(sub[variable].values[:, None], sub.time_to_break.shape)
        dtype = ds.attrs["dtype"]
        rows.append({"experiment": ds.attrs["name"], "variable": variable, "dtype": dtype,
                     "weight_value": float(sections["init"]["weight_value"]),
                     "seeds": int(sub.sizes["seed"]),
                     "curve": curve(xs.ravel(), sub.time_to_break.values.ravel(),
                                    sub.broken.values.ravel(), rounding_limit(dtype))})
    return rows
