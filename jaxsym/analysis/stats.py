"""Statistics for symmetry-breaking experiments (pure NumPy/SciPy; never imports JAX).

Contract
--------
* ``wilson_interval(k, n)``: Wilson score CI for a binomial proportion k/n, elementwise over
  broadcastable arrays (scipy ``binomtest(...).proportion_ci(method="wilson")``); n == 0 -> nan.
* ``kaplan_meier(times, events)``: product-limit survival S(t) = P(T > t) of a time-to-event
  (e.g. steps until a network breaks symmetry / converges) with right censoring at the step
  budget, via ``scipy.stats.ecdf``. Pointwise band: Greenwood variance, **log-log** method.
* ``median_time(times, events)``: KM median with a CI from inverting the pointwise band.
  A median that is not reached is ``inf`` -- never the mean of the runs that finished.
* ``fit_log_law(sigma, times)``: ``T = a + b log10(1/sigma)`` fitted on per-sigma medians,
  stratified bootstrap CI for the slope ``b`` (steps per decade of init scale).

All functions are deterministic (bootstrap seeded by ``numpy.random.default_rng(seed)``).
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
from scipy import stats

__all__ = [
    "wilson_interval", "KaplanMeier", "kaplan_meier", "MedianTime", "median_time",
    "format_median", "LogLawFit", "fit_log_law",
]

_TOL = 1e-12  # survival values are products of ratios; compare to 0.5 with this slack


def wilson_interval(successes, trials, confidence: float = 0.95):
    """Wilson score interval for a proportion p = successes / trials, elementwise.

    ``(p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)`` with z the two-sided normal
    quantile, computed by ``scipy.stats.binomtest(k, n).proportion_ci(confidence, "wilson")``.
    ``successes`` and ``trials`` are integer arrays of broadcastable shapes; returns
    ``(low, high)`` float arrays of the broadcast shape (0-d inputs give NumPy scalars).
    Where ``trials == 0`` both bounds are nan. Raises ValueError unless 0 <= k <= n.
    """
    k, n = np.broadcast_arrays(np.asarray(successes), np.asarray(trials))
    if np.any(k < 0) or np.any(k > n):
        raise ValueError("wilson_interval needs 0 <= successes <= trials elementwise")
    low = np.full(k.shape, np.nan)
    high = np.full(k.shape, np.nan)
    for i in np.ndindex(k.shape):
        if n[i] > 0:
            ci = stats.binomtest(int(k[i]), int(n[i])).proportion_ci(confidence, method="wilson")
            low[i], high[i] = ci.low, ci.high
    return low[()], high[()]


class KaplanMeier(NamedTuple):
    """Kaplan-Meier estimate; all fields are 1-D float arrays of the same length m.

    ``time``: distinct event/censor times, ascending. ``survival``: S(t) just after each time
    (right-continuous step function). ``low``/``high``: pointwise confidence band.
    """

    time: np.ndarray
    survival: np.ndarray
    low: np.ndarray
    high: np.ndarray

    def survival_at(self, t):
        """S(t) as a right-continuous step function of any-shaped ``t``; 1.0 before time[0]."""
        idx = np.searchsorted(self.time, np.asarray(t, dtype=float), side="right") - 1
        return np.where(idx < 0, 1.0, self.survival[np.maximum(idx, 0)])[()]


def kaplan_meier(times, events, confidence: float = 0.95) -> KaplanMeier:
    """Product-limit estimator ``S(t) = prod_{t_i <= t} (1 - d_i / r_i)`` (d_i events at t_i,
    r_i at risk just before t_i), via ``scipy.stats.ecdf(CensoredData.right_censored(...)).sf``.

    ``times``: shape (n,), the time of each run; ``events``: shape (n,) bool, True = the event
    (break/converge) happened at ``times``, False = right-censored there (e.g. the step budget).

    Band: Greenwood variance with the **log-log** transform (scipy ``method="log-log"``), which
    stays inside [0, 1] and has better small-sample coverage than "linear". Where the formula is
    undefined it is completed as: S == 1 (no event yet, zero variance) -> low = high = 1;
    S == 0 (last run was an event) -> low = 0 and ``high`` carries its previous value forward
    (band stays non-increasing). With no events at all the result is the single point
    ``time=[max(times)], survival=[1], low=[1], high=[1]`` (nothing observed to fall).
    """
    t = np.asarray(times, dtype=float).ravel()
    e = np.asarray(events, dtype=bool).ravel()
    if t.size == 0 or t.shape != e.shape:
        raise ValueError("kaplan_meier needs non-empty times and events of the same length")
    if not e.any():
        one = np.ones(1)
        return KaplanMeier(np.array([t.max()]), one, one.copy(), one.copy())
    sf = stats.ecdf(stats.CensoredData.right_censored(t, censored=~e)).sf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "undefined at some observations"
        ci = sf.confidence_interval(confidence, method="log-log")
    s = np.asarray(sf.probabilities, dtype=float)
    low = np.asarray(ci.low.probabilities, dtype=float).copy()
    high = np.asarray(ci.high.probabilities, dtype=float).copy()
    top = s >= 1.0 - _TOL
    low[top], high[top] = 1.0, 1.0
    for i in np.flatnonzero(np.isnan(low) | np.isnan(high)):
        if s[i] <= _TOL:
            low[i] = 0.0
        if np.isnan(high[i]):
            high[i] = high[i - 1] if i > 0 else 1.0
        if np.isnan(low[i]):
            low[i] = low[i - 1] if i > 0 else 1.0
    return KaplanMeier(np.asarray(sf.quantiles, dtype=float), s, low, high)


class MedianTime(NamedTuple):
    """KM median time with CI. ``median``/``high`` are inf when not reached/unbounded."""

    median: float
    low: float
    high: float
    reached: bool
    n: int
    n_events: int


def _first_below_half(time: np.ndarray, curve: np.ndarray) -> float:
    hit = np.flatnonzero(curve <= 0.5 + _TOL)
    return float(time[hit[0]]) if hit.size else math.inf


def median_time(times, events, confidence: float = 0.95) -> MedianTime:
    """Kaplan-Meier median ``min{t : S(t) <= 1/2}`` and its CI by inverting the band.

    CI (Brookmeyer-Crowley style): ``low = min{t : lower_band(t) <= 1/2}``,
    ``high = min{t : upper_band(t) <= 1/2}`` (inf if the upper band never reaches 1/2). The
    lower band falls first, so it gives the LOWER limit: low <= median <= high. If S never drops to 1/2
    (e.g. most runs censored at the budget) then ``median = inf`` and ``reached = False``;
    the mean of the finished runs is never substituted. Inputs as in :func:`kaplan_meier`.
    """
    km = kaplan_meier(times, events, confidence)
    e = np.asarray(events, dtype=bool).ravel()
    med = _first_below_half(km.time, km.survival)
    return MedianTime(
        median=med,
        low=_first_below_half(km.time, km.low),
        high=_first_below_half(km.time, km.high),
        reached=bool(np.isfinite(med)),
        n=int(e.size),
        n_events=int(e.sum()),
    )


def _num(x: float) -> str:
    return str(int(round(x))) if float(x).is_integer() or abs(x) >= 100 else f"{x:.3g}"


def format_median(m: MedianTime, budget: float) -> str:
    """``"523 [498, 551]"``; ``"523 [498, > 2000]"`` if only the upper CI bound is unbounded;
    ``"> 2000"`` if the median is not reached within ``budget`` steps."""
    if not m.reached:
        return f"> {_num(budget)}"
    hi = _num(m.high) if np.isfinite(m.high) else f"> {_num(budget)}"
    lo = _num(m.low) if np.isfinite(m.low) else "?"
    return f"{_num(m.median)} [{lo}, {hi}]"


class LogLawFit(NamedTuple):
    """Fit of ``T = a + b log10(1/sigma)``; [b_low, b_high] is the bootstrap CI of ``b``."""

    a: float
    b: float
    b_low: float
    b_high: float
    n_points: int  # distinct sigma values used
    sigma_min: float
    sigma_max: float


def fit_log_law(sigma, times, events=None, sigma_range=None, n_boot: int = 2000,
                confidence: float = 0.95, seed: int = 0) -> LogLawFit:
    """Least-squares fit of ``T = a + b x``, ``x = log10(1/sigma)``, on per-sigma median times.

    ``sigma``, ``times`` (and optional bool ``events``): shape (n,), one entry per network,
    ``sigma > 0``. Networks with ``events == False`` (censored, did not finish) are EXCLUDED,
    which biases medians low where censoring occurs -- use a ``sigma_range=(lo, hi)``
    (inclusive) in which every network converges. Each distinct sigma contributes its median
    time (robust to outliers); ``a, b`` by ``scipy.stats.linregress``. CI for ``b``: ``n_boot``
    stratified bootstrap replicates (networks resampled with replacement within each sigma,
    medians and OLS slope recomputed), percentile interval at ``confidence``, RNG
    ``numpy.random.default_rng(seed)``. Raises ValueError with < 2 distinct sigma values.
    """
    s = np.asarray(sigma, dtype=float).ravel()
    t = np.asarray(times, dtype=float).ravel()
    keep = np.ones(s.shape, bool) if events is None else np.asarray(events, bool).ravel()
    if not (s.shape == t.shape == keep.shape):
        raise ValueError("sigma, times and events must have the same length")
    if np.any(~(s > 0)):
        raise ValueError("fit_log_law needs sigma > 0 for every network")
    if sigma_range is not None:
        keep = keep & (s >= sigma_range[0]) & (s <= sigma_range[1])
    s, t = s[keep], t[keep]
    levels = np.unique(s)
    if levels.size < 2:
        raise ValueError(
            f"fit_log_law needs >= 2 distinct sigma values with finished networks in range, "
            f"got {levels.size} (sigma_range={sigma_range})")
    groups = [t[s == lv] for lv in levels]
    x = np.log10(1.0 / levels)
    fit = stats.linregress(x, [np.median(g) for g in groups])
    rng = np.random.default_rng(seed)
    boot_med = np.empty((n_boot, levels.size))
    for j, g in enumerate(groups):
        boot_med[:, j] = np.median(g[rng.integers(0, g.size, size=(n_boot, g.size))], axis=1)
    xc = x - x.mean()
    slopes = boot_med @ xc / (xc @ xc)  # OLS slope of each replicate
    alpha = 1.0 - confidence
    b_low, b_high = np.quantile(slopes, [alpha / 2, 1 - alpha / 2])
    return LogLawFit(float(fit.intercept), float(fit.slope), float(b_low), float(b_high),
                     int(levels.size), float(levels.min()), float(levels.max()))
