"""The small-weight plateau and the break, two clocks (the plateau section): the exponent fit
recovers a known power law per data draw, and in a real run with every weight layer at scale
eps the plateau's end ignores sigma_b, grows like eps^-(r-2) (r = 3 here), and comes before
the break, whose log-law slope in sigma_b is read at every eps."""

import math

import numpy as np
import pytest

from jaxsym.analysis import plateau
from jaxsym.engine.run import run_study
from jaxsym.study import config

#: one xdist worker runs this module, so its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group("test_plateau")

STUDY = """
name = "plateau_check"
[task]
name = "teacher_student"
dim = 2
teacher_width = 2
n_train = 64
n_test = 8
draws = 3
[model]
depth = 3
width = 7
[train]
learning_rate = 0.5
steps = 700
dtype = "float64"
[init]
weight_mode = "constant"
[grid]
activation = ["tanh", "gelu"]
weight_value = [0.25, 0.125, 0.0625]
sigma_b = [1e-8, 1e-4]
[seeds]
count = 2
[record]
checkpoints = 8
gradient_steps = 0
[thresholds]
loss = 0.3
[report]
section = "plateau"
"""


def test_draw_exponents_recover_a_power_law_per_draw():
    eps = np.array([0.2, 0.1, 0.05])
    draws = np.array([0, 0, 1, 1, 2, 2])
    scale = np.array([30.0, 30.0, 50.0, 50.0, 80.0, 80.0])
    times = np.round(scale[None, :] * (eps[:, None] / eps[0]) ** -2.0)
    reached = np.ones(times.shape, bool)
    np.testing.assert_allclose(plateau.draw_exponents(eps, times, reached, draws), 2.0,
                               atol=1e-3)
    reached[2, 4:] = False  # draw 2 never leaves the plateau at the smallest eps
    out = plateau.draw_exponents(eps, times, reached, draws)
    assert np.isfinite(out[:2]).all() and math.isnan(out[2])
    assert [plateau.predicted_exponent(d) for d in (2, 3, 4)] == [0, 1, 2]


@pytest.fixture(scope="module")
def plateau_run(tmp_path_factory):
    study = config.parse_study(STUDY)
    run_dir = tmp_path_factory.mktemp("plateau") / "run"
    run_study(study, run_dir, progress=False)
    return run_dir


def test_two_clocks_in_one_run(plateau_run, tmp_path):
    """Width 7 (odd), 3 weight layers at scale eps: per activation the plateau's end is the
    same at sigma_b 1e-8 and 1e-4 (within 1%), grows as eps shrinks with an exponent within
    0.35 of r - 2 = 1, and no network breaks layer 1 before it; tanh's log-law slope in sigma_b
    is the same at every eps; the section is written."""
    from jaxsym import reporting
    from jaxsym.analysis import sections

    numbers = dict(sections.analyse(sections.load([plateau_run])))["plateau"]
    (run,) = numbers["runs"]
    assert run["depth"] == 3 and set(run["activations"]) == {"tanh", "gelu"}
    for name, a in run["activations"].items():
        medians = [row["plateau"].median for row in a["rows"]]
        assert all(row["plateau"].reached for row in a["rows"]), name
        assert medians == sorted(medians) and medians[0] < medians[-1], (name, medians)
        assert all(row["sigma_spread"] <= 0.01 for row in a["rows"]), name
        assert a["predicted"] == 1 and a["n_draws"] == 3, name
        assert abs(a["exponent"].mean - 1.0) < 0.35, (name, a["exponent"])
        assert all(row["after"] == row["both"] for row in a["rows"]), name
    # tanh breaks layer 1 at every point: its log-law slope ignores eps (within 20%)
    slopes = [row["log_law"].b for row in run["activations"]["tanh"]["rows"]]
    assert min(slopes) > 0 and max(slopes) <= 1.2 * min(slopes), slopes
    assert all(row["after"] == row["both"] == 12 for row in run["activations"]["tanh"]["rows"])
    target = numbers["target"]
    assert target["total"] == 2 and target["met"] + len(target["misses"]) == 2
    report = reporting.write_report([plateau_run], tmp_path).read_text()
    assert "## Small weights: the plateau and the break, two clocks" in report
    assert f"at {target['met']} of 2 (depth >= 3, activation) rows" in report
    assert (tmp_path / "plateau.png").exists()
    # the answer's sentence comes from the same numbers
    low, high = sorted(a["exponent"].mean for a in run["activations"].values())
    assert ("**What if the weights are small as well?** Then a plateau comes first, growing "
            "like eps^-(L-2) with all L layers at scale eps (measured exponents L = 3: "
            f"{low:.2f}-{high:.2f} against 1) whatever sigma_b; layer 1 broke after it in") in report


def test_the_cross_machine_comparison_checks_every_plateau(plateau_run, tmp_path):
    """benchmarks/cross_machine.py on a plateau run: the same run twice agrees everywhere; one
    network's plateau end moved by 5% is flagged at its grid point only."""
    import os
    import shutil
    import sys

    import xarray as xr

    from jaxsym.engine import store

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
    import cross_machine

    ref, other = tmp_path / "ref", tmp_path / "other"
    for root in (ref, other):
        (root / "plateau-x").mkdir(parents=True)
        shutil.copy(plateau_run / "results.nc", root / "plateau-x" / "results.nc")
    same = cross_machine.compare(ref, other, ["plateau-x"])
    # 12 points x (2 layers + the plateau end) + 2 exponents
    assert len(same) == 12 * 3 + 2 and all(r["same"] for r in same)
    moved = store.load(plateau_run).load().copy(deep=True)
    t = moved.time_to_converge.values.copy()
    index = (0,) * (t.ndim - 1) + (1,)
    assert bool(moved.converged.values[index])
    t[index] = int(t[index] * 1.05) + 3
    moved["time_to_converge"] = (moved.time_to_converge.dims, t)
    moved.to_netcdf(other / "plateau-x" / "results.nc")
    xr.backends.file_manager.FILE_CACHE.clear()
    differ = [r for r in cross_machine.compare(ref, other, ["plateau-x"]) if not r["same"]]
    assert len(differ) == 1 and "plateau end" in differ[0]["what"], differ


def test_a_run_without_the_plateau_axes_is_refused_in_one_line(tmp_path, capsys):
    """The plateau section on a run without a weight_value axis: exit status 2, one line
    naming the missing axis, nothing written."""
    from jaxsym import cli

    study = config.parse_study(STUDY.replace("weight_value = [0.25, 0.125, 0.0625]\n", "")
                               .replace("steps = 700", "steps = 20")
                               .replace('activation = ["tanh", "gelu"]', 'activation = ["tanh"]'))
    run_study(study, tmp_path / "run", progress=False)
    out = tmp_path / "figures"
    assert cli.main(["report", str(tmp_path / "run"), "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "weight_value" in error and "plateau" in error
    assert not out.exists()
