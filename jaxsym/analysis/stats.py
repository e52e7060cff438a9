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
    "format_median", "LogLawFit", "fit_log_law", "MeanInterval", "mean_interval",
    "Ratio", "median_ratio", "SigmaFit", "fit_sigma_p",
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


class MeanInterval(NamedTuple):
    """Mean of ``n`` values with its ``[low, high]`` Student-t CI (nan bounds for n < 2)."""

    mean: float
    low: float
    high: float
    n: int


def mean_interval(values, confidence: float = 0.95, bounds=(-math.inf, math.inf),
                  log: bool = False) -> MeanInterval:
    """Mean and the Student-t interval ``mean +- t_{n-1} s / sqrt(n)`` (``scipy.stats.t``) of
    the finite entries of ``values``, clipped to ``bounds`` (e.g. ``(0, 1)`` for an accuracy);
    ``log=True``: the geometric mean and the interval computed on ``log10`` of the (positive)
    values (for a loss, whose spread is multiplicative). All-equal values give a zero-width
    interval; fewer than 2 values nan bounds."""
    x = np.asarray(values, dtype=float).ravel()
    x = x[np.isfinite(x) & ((x > 0) if log else True)]
    n = int(x.size)
    if n == 0:
        return MeanInterval(math.nan, math.nan, math.nan, 0)
    y = np.log10(x) if log else x
    mean = float(y.mean())
    back = (lambda v: 10.0 ** v) if log else (lambda v: v)
    if n < 2:
        return MeanInterval(back(mean), math.nan, math.nan, n)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * y.std(ddof=1) / math.sqrt(n))
    low, high = (float(np.clip(back(v), *bounds)) for v in (mean - half, mean + half))
    return MeanInterval(back(mean), low, high, n)


class Ratio(NamedTuple):
    """``value = median(a) / median(b)`` with a bootstrap ``[low, high]`` (inf: a's median not
    reached within the budget; nan: b's not)."""

    value: float
    low: float
    high: float


def _censored_median(times):
    """Median over the last axis of times in which a censored entry is +inf: with one common
    censoring budget the Kaplan-Meier median ``min{t : S(t) <= 1/2}`` is the order statistic
    ``x_(ceil(n/2))`` (NumPy's ``inverted_cdf`` median, taken here without interpolating
    infinities)."""
    n = times.shape[-1]
    return np.sort(times, axis=-1)[..., math.ceil(n / 2) - 1]


def median_ratio(times_a, events_a, times_b, events_b, n_boot: int = 2000,
                 confidence: float = 0.95, seed: int = 0) -> Ratio:
    """Ratio of the censored medians of two samples censored at the SAME budget (times of
    networks with ``events == False`` count as +inf), with a percentile bootstrap CI (each
    sample resampled with replacement; RNG ``default_rng(seed)``)."""
    a = np.where(np.asarray(events_a, bool), np.asarray(times_a, float), np.inf).ravel()
    b = np.where(np.asarray(events_b, bool), np.asarray(times_b, float), np.inf).ravel()
    rng = np.random.default_rng(seed)
    if not np.isfinite(_censored_median(b)):
        return Ratio(math.nan, math.nan, math.nan)  # the reference's median is not reached
    with np.errstate(divide="ignore", invalid="ignore"):
        value = float(_censored_median(a) / _censored_median(b))
        ratios = (_censored_median(a[rng.integers(0, a.size, (n_boot, a.size))])
                  / _censored_median(b[rng.integers(0, b.size, (n_boot, b.size))]))
    ratios = np.where(np.isnan(ratios), np.inf, ratios)
    alpha = 1.0 - confidence
    # order statistics, not interpolation (inf - inf is nan)
    low, high = np.quantile(ratios, [alpha / 2, 1 - alpha / 2], method="inverted_cdf")
    return Ratio(value, float(low), float(high))


class SigmaFit(NamedTuple):
    """Logistic fit ``P(sigma) = 1 / (1 + exp(-(a + b log10 sigma)))`` on the rising branch
    (sigma up to the first sigma with the largest observed P) and the sigma at which it
    reaches ``p``, with a bootstrap ``[low, high]`` (clipped to the fitted sigma range, and
    widened to the two tried sigmas around it whose rates lie on either side of ``p``).
    ``status``: "fit"; "always" (every network of the branch succeeded: ``value`` = the
    smallest sigma, an upper bound); "never" (no sigma reaches P >= p: ``value`` = inf);
    "below" (the fitted sigma_p lies below the smallest sigma: ``value`` = that sigma, an
    upper bound). A fitted value above the branch's last sigma (whose rate is >= p) is
    clipped to it.
    ``falls_above``: the first sigma whose observed P is below ``p`` although a smaller sigma
    reached ``p`` (non-monotone), else None."""

    value: float
    low: float
    high: float
    a: float
    b: float
    status: str
    falls_above: float | None = None


#: the logistic slope is bounded (per decade of sigma): with perfectly separated outcomes the
#: maximum-likelihood slope is infinite; the bound puts sigma_p inside the separating bracket
MAX_LOGISTIC_SLOPE = 20.0


def _logistic_fit(x, y):
    """Maximum-likelihood ``(a, b)`` of ``P = expit(a + b x)`` with ``|b| <= 20``
    (:func:`_logistic_fits` on the sufficient statistics: per distinct x, the numbers of
    outcomes and of successes)."""
    levels, inverse = np.unique(np.asarray(x, float), return_inverse=True)
    n = np.bincount(inverse, minlength=levels.size).astype(float)
    k = np.bincount(inverse, weights=np.asarray(y, float), minlength=levels.size)
    a, b = _logistic_fits(levels, n, k[None, :])
    return float(a[0]), float(b[0])


def _negative_log_likelihood(a, b, x, n, k):
    z = a[:, None] + b[:, None] * x[None, :]
    return np.sum(n * np.logaddexp(0.0, z) - k * z, axis=1)


def _logistic_fits(x, n, k, iterations: int = 100, tol: float = 1e-12):
    """Many grouped logistic fits at once: for each row r of ``k (R, L)`` the ``(a_r, b_r)``
    minimising ``sum_l n_l log(1 + e^z) - k_rl z``, ``z = a + b x_l``, with
    ``|b| <= MAX_LOGISTIC_SLOPE`` and ``|a| <= 200``: damped Newton steps (the likelihood is
    convex), a step that crosses the slope bound stops at it and only ``a`` moves while the
    gradient pushes ``b`` outward. Vectorised over the rows (a bootstrap's replicates), where
    one ``scipy.optimize.minimize`` per replicate cost seconds per fit."""
    from scipy import special

    x, n, k = np.asarray(x, float), np.asarray(n, float), np.atleast_2d(np.asarray(k, float))
    a = special.logit(np.clip(k.sum(axis=1) / n.sum(), 0.05, 0.95))
    b = np.zeros_like(a)
    value = _negative_log_likelihood(a, b, x, n, k)
    for _ in range(iterations):
        p = special.expit(a[:, None] + b[:, None] * x[None, :])
        r = n * p - k
        ga, gb = r.sum(axis=1), (r * x).sum(axis=1)
        w = n * p * (1 - p)
        haa, hab, hbb = w.sum(axis=1), (w * x).sum(axis=1), (w * x * x).sum(axis=1)
        det = haa * hbb - hab ** 2
        ok = det > 1e-300 * np.maximum(haa * hbb, 1e-300)
        da = np.where(ok, -(hbb * ga - hab * gb) / np.where(ok, det, 1.0), 0.0)
        db = np.where(ok, -(haa * gb - hab * ga) / np.where(ok, det, 1.0), 0.0)
        # at the bound with the gradient pushing outward: move a alone
        held = ((b >= MAX_LOGISTIC_SLOPE) & (gb < 0)) | ((b <= -MAX_LOGISTIC_SLOPE) & (gb > 0))
        held |= ~ok
        da = np.where(held, -ga / np.maximum(haa, 1e-300), da)
        db = np.where(held, 0.0, db)
        step = np.ones_like(a)
        for _ in range(40):  # halve until the likelihood does not increase
            na = np.clip(a + step * da, -200.0, 200.0)
            nb = np.clip(b + step * db, -MAX_LOGISTIC_SLOPE, MAX_LOGISTIC_SLOPE)
            new = _negative_log_likelihood(na, nb, x, n, k)
            worse = new > value + 1e-15 * np.abs(value)
            if not worse.any():
                break
            step = np.where(worse, step / 2, step)
        na = np.where(worse, a, na)
        nb = np.where(worse, b, nb)
        new = np.where(worse, value, new)
        done = np.all(np.abs(new - value) <= tol * np.maximum(np.abs(value), 1.0))
        a, b, value = na, nb, new
        if done:
            break
    return a, b


def special_logit(p: float) -> float:
    """``log(p / (1 - p))``."""
    return math.log(p / (1.0 - p))


def _sigma_at(a: float, b: float, p: float) -> float:
    from scipy import special

    return float(10.0 ** ((special.logit(p) - a) / b)) if b > 0 else math.nan


def _rising_branch(s, y, p):
    """The networks at sigma up to the first level with the largest success rate, that rate,
    the first level whose rate is below ``p`` after a smaller level reached ``p`` (None if
    none: P never falls back), and every level with its rate."""
    levels = np.unique(s)
    rates = np.array([y[s == level].mean() for level in levels])
    peak = int(np.argmax(rates))
    reached = np.maximum.accumulate(rates >= p)
    falls = [lv for j, lv in enumerate(levels) if j > 0 and reached[j - 1] and rates[j] < p]
    keep = s <= levels[peak]
    return (s[keep], y[keep], float(rates[peak]), (float(falls[0]) if falls else None),
            levels[: peak + 1], rates[: peak + 1])


def _grid_bracket(value, levels, rates, p):
    """``(below, above)``: the largest tried sigma <= value whose rate is < p and the smallest
    tried sigma >= value whose rate is >= p (the grid's own resolution of sigma_p)."""
    below = [lv for lv, r in zip(levels, rates) if lv <= value and r < p]
    above = [lv for lv, r in zip(levels, rates) if lv >= value and r >= p]
    return (max(below) if below else value), (min(above) if above else value)


def fit_sigma_p(sigma, success, p: float = 0.9, n_boot: int = 200, confidence: float = 0.95,
                seed: int = 0) -> SigmaFit:
    """The sigma at which P(success) reaches ``p`` (e.g. sigma_90), from a logistic fit in
    log10(sigma) of one 0/1 outcome per network (``sigma > 0``, shape (n,)) on the rising
    branch, with a stratified bootstrap percentile CI (networks resampled within each sigma;
    a replicate without a rising fit counts as sigma_p = inf). See :class:`SigmaFit`."""
    s = np.asarray(sigma, float).ravel()
    y = np.asarray(success, float).ravel()
    if s.shape != y.shape or np.any(~(s > 0)):
        raise ValueError("fit_sigma_p needs sigma > 0 and one outcome per network")
    s, y, best, falls, levels_kept, rates_kept = _rising_branch(s, y, p)
    if best < p:
        return SigmaFit(math.inf, math.inf, math.inf, math.nan, math.nan, "never", falls)
    if y.min() == 1.0:
        return SigmaFit(float(s.min()), 0.0, float(s.min()), math.inf, 0.0, "always", falls)
    x = np.log10(s)
    a, b = _logistic_fit(x, y)
    rng = np.random.default_rng(seed)
    levels = [np.flatnonzero(s == level) for level in np.unique(s)]
    # the replicates' successes per sigma level, drawn in the order of the former loop
    counts = np.empty((n_boot, len(levels)))
    for r in range(n_boot):
        counts[r] = [y[g[rng.integers(0, g.size, g.size)]].sum() for g in levels]
    sizes = np.array([g.size for g in levels], float)
    ab, bb = _logistic_fits(np.log10(np.unique(s)), sizes, counts)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        sig = np.where(bb > 0, 10.0 ** ((special_logit(p) - ab) / np.where(bb > 0, bb, 1.0)),
                       math.inf)
    boot = np.where(counts.sum(axis=1) == sizes.sum(), s.min(),
                    np.where(counts.sum(axis=1) == 0, math.inf, sig))
    alpha = 1.0 - confidence
    low, high = np.clip(np.quantile(boot, [alpha / 2, 1 - alpha / 2], method="inverted_cdf"),
                        s.min(), s.max())
    value = _sigma_at(a, b, p) if b > 0 else math.inf
    status = "below" if value < s.min() else "fit"
    value = float(np.clip(value, s.min(), s.max()))
    # never narrower than the grid: with perfectly separated outcomes every bootstrap
    # replicate gives the same fit, but sigma_p is known only to lie between two tried sigmas
    below, above = _grid_bracket(value, levels_kept, rates_kept, p)
    return SigmaFit(value, float(min(low, below)), float(max(high, above)), a, b, status, falls)
