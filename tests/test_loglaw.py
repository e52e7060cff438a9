"""The log-law slope stated once (jaxsym.analysis.loglaw), the report's one rounding rule
(jaxsym.analysis.common) and the counts over every row (NumPy only, fast)."""

import re
from pathlib import Path

import numpy as np
import pytest

from jaxsym.analysis import common, loglaw

ROOT = Path(__file__).resolve().parents[1]
SIGMAS = 10.0 ** np.arange(-14, -1)  # 1e-14 .. 1e-2


def _networks(median_of, seeds=64, spread=3.0, seed=0):
    """Per-network (sigma, time, broken) whose per-sigma median is ``median_of(x)``,
    ``x = log10(1/sigma)``, with symmetric noise."""
    rng = np.random.default_rng(seed)
    x = np.repeat(SIGMAS, seeds)
    t = median_of(np.log10(1.0 / x)) + spread * rng.standard_normal(x.size)
    return x, t, np.ones(x.size, bool)


def test_a_straight_log_law_is_its_own_asymptote_and_does_not_bend():
    x, t, e = _networks(lambda u: 40.0 + 300.0 * u)
    c = loglaw.curve(x, t, e, limit=1e-14)
    assert c.asymptote.b == pytest.approx(300.0, rel=0.02)
    assert c.window.b == pytest.approx(300.0, rel=0.005)
    assert c.asymptote.b_low <= 300.0 <= c.asymptote.b_high
    assert not c.bends and c.curvature[1] <= 0.0 <= c.curvature[2]
    assert c.cells == tuple(SIGMAS)


def test_a_bending_curve_is_stated_by_its_small_sigma_end():
    """Local slope 300 at the small-sigma end, falling towards large sigma_b (the escape
    starting before the saddle): the window fit is far below 300, the asymptote is not, and
    the curvature check flags the bend."""
    def median(u):  # local slope 300 for u >= 8, 300 - 40 (8 - u) below (60 at 1e-2)
        return np.where(u >= 8, 300.0 * u, 300.0 * u + 20.0 * (8.0 - u) ** 2)

    x, t, e = _networks(median)
    c = loglaw.curve(x, t, e, limit=1e-14)
    assert c.bends and c.curvature[1] > 0  # steeper at small sigma_b
    assert c.asymptote.b == pytest.approx(300.0, rel=0.03)
    assert c.window.b < 260.0 and c.window.b_high < 0.9 * c.asymptote.b_low
    assert c.asymptote.sigma_max == pytest.approx(1e-12)


def test_cells_below_the_rounding_limit_or_mostly_unbroken_are_left_out():
    x, t, e = _networks(lambda u: 300.0 * u)
    e = e.copy()
    e[x == 1e-5] = np.arange((x == 1e-5).sum()) % 2 == 0  # half broke: not a cell
    limit = common.rounding_limit("float64")  # 100 u = 1.1e-14
    c = loglaw.curve(x, t, e, limit=limit)
    assert 1e-14 not in c.cells and 1e-5 not in c.cells and c.cells[0] == pytest.approx(1e-13)
    few = loglaw.curve(x[x >= 1e-3], t[x >= 1e-3], e[x >= 1e-3], limit=limit)
    assert few.asymptote is None and few.window is None and not few.bends


def test_one_rounding_rule():
    assert common.rounding_limit("float64") == pytest.approx(100 * 2.0 ** -53)
    assert common.rounding_limit("float32") == pytest.approx(100 * 2.0 ** -24)
    assert common.below_rounding(1e-8, "float32") and not common.below_rounding(1e-5, "float32")
    assert not common.below_rounding(1e-8, "float64") and common.below_rounding(1e-16, "float64")
    assert not common.below_rounding(0.0, "float32") and not common.below_rounding(None, "float32")
    from jaxsym.analysis.escape import ESCAPE_FIT_ABOVE_U

    assert ESCAPE_FIT_ABOVE_U == common.ROUNDING_ROUNDOFFS
    assert f"{common.ROUNDING_ROUNDOFFS:g} unit roundoffs" in common.ROUNDING_RULE


def test_bias_only_thresholds_below_the_rounding_limit_are_marked():
    from jaxsym.analysis import stats
    from jaxsym.reporting import bias_only
    from jaxsym.reporting.common import ROUNDING_MARK

    median = stats.median_time(np.array([5.0, 6.0]), np.array([True, True]))
    row = {"weight_mode": "constant", "activation": "tanh", "p_broken_zero": (0.0, 0.0, 0.1),
           "p_broken_top": (1.0, 0.9, 1.0), "sigma_p90": 1e-8, "sigma_p90_wilson": 1e-5,
           "median_top": median, "budget": 10, "fit": None, "dtype": "float32"}
    table = bias_only._table([row])
    assert f"| 1e-08 {ROUNDING_MARK} |" in table and "| 1e-05 |" in table
    assert ROUNDING_MARK not in bias_only._table([{**row, "dtype": "float64"}])


def _row(agree, p_inside=True):
    return {"agree": agree, "p_low": 0.0, "p_high": 1.0 if p_inside else 0.1,
            "p_predicted": 0.5}


def test_predict_counts_are_over_every_row_and_name_the_failing_ones():
    from jaxsym.reporting import predict

    tallies = [("a, tanh", 52, 52, 52), ("a (depth 3), gelu", 18, 52, 32)]
    text = predict._totals(tallies)
    assert "**70 of 104**" in text and "**84 of 104**" in text
    assert "a (depth 3), gelu: 18 of 52" in text and "a, tanh" not in text
    assert "No row" in predict._totals(tallies[:1])


def test_the_readme_counts_the_whole_curve_over_every_row_of_the_committed_table():
    """The README's whole-curve count is the sum over EVERY row of the committed predicted
    report's summary table (deeper networks included), not over a chosen subset."""
    report = (ROOT / "figures" / "predicted" / "REPORT.md").read_text()
    rows = re.findall(r"^\| (\w+(?: \(depth \d\))?) \| (\w+) \| (\d+) of (\d+) \| \d+ of \d+ \| "
                      r"[^|]+\| (\d+) of \d+ \|", report, flags=re.M)
    assert len(rows) >= 9
    agree, total = sum(int(r[2]) for r in rows), sum(int(r[3]) for r in rows)
    p_ok = sum(int(r[4]) for r in rows)
    readme = (ROOT / "README.md").read_text()
    assert f"within 5% at {agree} of {total} (task, activation, draw, sigma_b) points" in readme
    assert f"lies inside the measured 95% interval at {p_ok} of {total}" in readme
