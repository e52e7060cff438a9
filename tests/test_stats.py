"""Known-answer tests for jaxsym.analysis.stats (NumPy/SciPy only, fast)."""

import math

import numpy as np
import pytest

from jaxsym.analysis.stats import (
    KaplanMeier, fit_log_law, format_median, kaplan_meier, median_time,
    wilson_interval,
)


# --- Wilson -------------------------------------------------------------------------------

def test_wilson_known_answer():
    low, high = wilson_interval(7, 20)
    assert round(float(low), 3) == 0.181 and round(float(high), 3) == 0.567


def test_wilson_vectorised_and_edges():
    k = np.array([[0, 7, 20], [3, 0, 5]])
    low, high = wilson_interval(k, 20)
    assert low.shape == high.shape == (2, 3)
    assert low[0, 1] == pytest.approx(0.1811918241, abs=1e-9)
    assert np.all((0 <= low) & (low <= k / 20) & (k / 20 <= high) & (high <= 1))
    assert low[0, 0] == 0.0 and 0 < high[0, 0] < 1  # 0/n
    assert high[0, 2] == pytest.approx(1.0) and 0 < low[0, 2] < 1  # n/n
    lo, hi = wilson_interval(np.array([0, 1]), np.array([0, 2]))
    assert np.isnan(lo[0]) and np.isnan(hi[0]) and 0 < lo[1] < 0.5 < hi[1] < 1
    with pytest.raises(ValueError):
        wilson_interval(5, 3)


# --- Kaplan-Meier -------------------------------------------------------------------------

def test_km_uncensored_is_empirical_survival():
    t = np.random.default_rng(1).integers(0, 20, size=50).astype(float)  # with ties
    km = kaplan_meier(t, np.ones(50, bool))
    np.testing.assert_array_equal(km.time, np.unique(t))
    grid = np.arange(-1.0, 22.0, 0.5)
    emp = (t[None, :] > grid[:, None]).mean(axis=1)
    np.testing.assert_allclose(km.survival_at(grid), emp, atol=1e-12)
    assert np.all((km.low <= km.survival + 1e-12) & (km.survival <= km.high + 1e-12))
    assert np.all((km.low >= 0) & (km.high <= 1)) and not np.any(np.isnan(km.low + km.high))


def test_km_censored_hand_computed():
    times = [1, 2, 2, 3, 4, 5]
    events = np.array([1, 1, 0, 1, 0, 1], bool)
    km = kaplan_meier(times, events)
    # product limit: t=1 r=6 d=1; t=2 r=5 d=1 (+1 censored); t=3 r=3 d=1; t=4 censor; t=5 r=1 d=1
    s1 = 5 / 6
    s2 = s1 * (1 - 1 / 5)
    s3 = s2 * (1 - 1 / 3)
    expected = [s1, s2, s3, s3, 0.0]
    np.testing.assert_array_equal(km.time, [1, 2, 3, 4, 5])
    np.testing.assert_allclose(km.survival, expected, atol=1e-12)
    assert km.survival_at(0.5) == 1.0 and km.survival_at(2.0) == pytest.approx(s2, abs=1e-12)
    assert km.survival_at(3.9) == pytest.approx(s3, abs=1e-12)
    assert km.low[-1] == 0.0 and km.high[-1] == km.high[-2]  # completed where S == 0
    assert np.all(np.diff(km.low) <= 0) and np.all(np.diff(km.high) <= 0)


def test_km_all_censored():
    km = kaplan_meier([5, 7, 7], [False, False, False])
    assert isinstance(km, KaplanMeier)
    np.testing.assert_array_equal(km.time, [7.0])
    assert km.survival[0] == 1.0 and km.high[0] == 1.0 and km.survival_at(100) == 1.0


# --- median -------------------------------------------------------------------------------

def test_median_uncensored_odd_is_sample_median():
    t = np.random.default_rng(2).exponential(100.0, size=101)
    m = median_time(t, np.ones(101, bool))
    assert m.reached and m.median == np.median(t)
    assert m.low <= m.median <= m.high < math.inf and (m.n, m.n_events) == (101, 101)


def test_median_heavily_censored_not_reached():
    budget = 2000
    t = np.r_[np.arange(1.0, 31.0), np.full(70, budget)]
    ev = np.r_[np.ones(30, bool), np.zeros(70, bool)]
    m = median_time(t, ev)
    assert not m.reached and m.median == math.inf and m.high == math.inf
    assert m.n_events == 30  # and NOT the mean of finished runs (15.5)
    assert format_median(m, budget) == "> 2000"


def test_median_ci_covers_exponential_truth():
    rng = np.random.default_rng(3)
    scale, budget = 200.0, 300.0
    raw = rng.exponential(scale, size=400)
    m = median_time(np.minimum(raw, budget), raw < budget)  # ~22% censored at the budget
    truth = scale * math.log(2)
    assert m.reached and m.low <= truth <= m.high
    assert m.low < m.median < m.high and m.high - m.low < 0.4 * truth


def test_format_median():
    from jaxsym.analysis.stats import MedianTime
    assert format_median(MedianTime(523, 498, 551, True, 100, 90), 2000) == "523 [498, 551]"
    assert format_median(MedianTime(523, 498, math.inf, True, 100, 60), 2000) == \
        "523 [498, > 2000]"


# --- log law ------------------------------------------------------------------------------

def _synthetic(seed=0):
    rng = np.random.default_rng(seed)
    sig = np.repeat(np.logspace(-8, -1, 8), 64)
    t = 100 + 50 * np.log10(1 / sig) + rng.normal(0, 5, size=sig.size)
    return sig, t


def test_fit_log_law_recovers_slope():
    sig, t = _synthetic()
    f = fit_log_law(sig, t)
    assert abs(f.b - 50) < 0.5 and abs(f.a - 100) < 3
    assert f.b_low < 50 < f.b_high and f.b_high - f.b_low < 2
    assert (f.n_points, f.sigma_min, f.sigma_max) == (8, 1e-8, 1e-1)
    assert fit_log_law(sig, t) == f  # same seed -> identical
    assert fit_log_law(sig, t, seed=1).b == f.b


def test_fit_log_law_excludes_censored_and_range():
    sig, t = _synthetic()
    f = fit_log_law(sig, t)
    sig2 = np.r_[sig, np.full(10, 1e-4)]
    t2 = np.r_[t, np.full(10, 1e6)]
    ev = np.r_[np.ones(sig.size, bool), np.zeros(10, bool)]
    assert fit_log_law(sig2, t2, events=ev) == f
    g = fit_log_law(sig, t, sigma_range=(1e-6, 1e-2))
    assert (g.n_points, g.sigma_min, g.sigma_max) == (5, 1e-6, 1e-2) and abs(g.b - 50) < 1


def test_fit_log_law_needs_two_sigmas():
    with pytest.raises(ValueError, match="distinct sigma"):
        fit_log_law(np.full(10, 1e-3), np.arange(10.0))
    sig, t = _synthetic()
    with pytest.raises(ValueError, match="distinct sigma"):
        fit_log_law(sig, t, sigma_range=(1e-3, 1e-3))


# --- the calibration's statistics ---------------------------------------------------------

def test_mean_interval_matches_scipy_and_its_variants():
    from scipy import stats as sps

    from jaxsym.analysis.stats import mean_interval

    x = np.array([0.91, 0.95, 0.97, 0.93, 0.99, 0.96])
    m = mean_interval(x)
    low, high = sps.t.interval(0.95, 5, loc=x.mean(), scale=sps.sem(x))
    assert (m.mean, m.low, m.high, m.n) == pytest.approx((x.mean(), low, high, 6), rel=1e-12)
    near_one = np.array([0.9, 1.0, 1.0])
    clipped = mean_interval(near_one, bounds=(0.0, 1.0))
    unclipped = mean_interval(near_one)
    assert unclipped.high > 1.0 and clipped.high == 1.0 and clipped.low == unclipped.low
    losses = np.array([1e-3, 1e-2, 1e-1])
    geo = mean_interval(losses, log=True)
    assert geo.mean == pytest.approx(1e-2, rel=1e-12) and geo.low < 1e-2 < geo.high
    assert geo.low > 0  # a loss interval never goes negative
    assert math.isnan(mean_interval([0.5]).low) and mean_interval([]).n == 0


def test_median_ratio_is_the_censored_median_ratio():
    from jaxsym.analysis.stats import median_ratio

    a = np.array([200.0, 400.0, 600.0, 800.0, 1000.0])
    b = np.array([100.0, 200.0, 300.0, 400.0, 500.0])
    ones = np.ones(5, bool)
    r = median_ratio(a, ones, b, ones)
    assert r.value == pytest.approx(2.0) and r.low <= 2.0 <= r.high
    # censored networks count as +inf: 3 of 5 censored -> the median is not reached
    censored = median_ratio(a, np.array([1, 1, 0, 0, 0], bool), b, ones)
    assert censored.value == math.inf
    # the reference's median not reached: no ratio
    assert math.isnan(median_ratio(a, ones, b, np.zeros(5, bool)).value)
    # the median is the KM median: min{t : S(t) <= 1/2} on 4 values is the 2nd smallest
    even = median_ratio(np.array([1.0, 2.0, 3.0, 4.0]), np.ones(4, bool),
                        np.array([1.0, 1.0, 1.0, 1.0]), np.ones(4, bool))
    km = median_time([1.0, 2.0, 3.0, 4.0], [True] * 4)
    assert even.value == km.median == 2.0


def test_fit_sigma_p_recovers_a_logistic_law_and_flags_degenerate_cases():
    from jaxsym.analysis.stats import fit_sigma_p

    rng = np.random.default_rng(0)
    levels = np.logspace(-4, 1, 11)
    sigma = np.repeat(levels, 400)
    # P = expit(2 (log10 sigma + 2)): sigma_90 = 10^(logit(0.9) / 2 - 2)
    p = 1 / (1 + np.exp(-2.0 * (np.log10(sigma) + 2.0)))
    fit = fit_sigma_p(sigma, rng.random(sigma.size) < p, 0.9, n_boot=100)
    truth = 10 ** (math.log(9) / 2 - 2)
    assert fit.status == "fit" and fit.low <= truth <= fit.high
    assert fit.value == pytest.approx(truth, rel=0.15) and fit.falls_above is None
    always = fit_sigma_p(levels, np.ones(levels.size, bool))
    assert always.status == "always" and always.value == levels.min()
    never = fit_sigma_p(levels, levels > 5.0)  # only the largest level succeeds once: P = 1
    assert never.status in ("fit", "always")
    none = fit_sigma_p(np.repeat(levels, 4), np.zeros(44, bool))
    assert none.status == "never" and none.value == math.inf
    # non-monotone: succeeds in the middle, fails again at the largest sigma
    bump = np.repeat(levels, 10)
    outcome = (bump >= 1e-2) & (bump <= 1.0)
    fit = fit_sigma_p(bump, outcome, n_boot=50)
    assert fit.falls_above == pytest.approx(levels[levels > 1.0][0])
    assert 1e-3 <= fit.value <= 1e-2  # between the last failing and first succeeding level


def test_fit_sigma_p_is_never_narrower_than_the_grid_and_flags_early_dips():
    from jaxsym.analysis.stats import fit_sigma_p

    levels = np.array([1e-8, 1e-7, 1e-6, 1e-5])
    sigma = np.repeat(levels, 16)
    separated = fit_sigma_p(sigma, sigma >= 1e-6)  # every replicate: the same perfect split
    assert separated.low <= 1e-7 and separated.high >= 1e-6
    assert 1e-7 <= separated.value <= 1e-6
    # P reaches 0.9 at 1e-8, dips at 1e-7, recovers: non-monotone, flagged at the dip
    outcome = np.concatenate([np.arange(16) < 15, np.arange(16) < 7, np.ones(32, bool)])
    assert fit_sigma_p(sigma, outcome, n_boot=50).falls_above == 1e-7
