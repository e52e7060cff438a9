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
