"""Report: figures and REPORT.md from (tiny) runs, one section per stored section kind;
numbers match the dataset."""

import numpy as np
import pytest

from jaxsym import api, reporting
from jaxsym.analysis import bias_only, phase, saddle, staircase, stats
from jaxsym.analysis.common import study_of, unit_roundoff
from jaxsym.analysis.escape import dtype_floor
from jaxsym.engine import store
from jaxsym.reporting.common import write_text_if_changed
from jaxsym.study import config


def _train(study, out):
    """Train a study (a Study or TOML text) into run directory ``out``; its Dataset."""
    return api.run(study, out=out)

TINY = """
name = "tiny_bias_only"
[task]
name = "teacher_student"
dim = 2
teacher_width = 2
n_train = 64
n_test = 16
[model]
depth = 2
width = 4
[train]
learning_rate = 0.3
steps = 300
[grid]
weight_mode = ["constant", "zero", "glorot"]
activation = ["tanh"]
sigma_b = [0.0, 1e-6, 1e-4, 1e-2]
[seeds]
count = 6
[thresholds]
loss = 0.05
[report]
section = "bias_only"
"""


def test_report_from_a_tiny_run(tmp_path):
    run = tmp_path / "run"
    ds = _train(TINY, run)
    path = reporting.write_report([run], tmp_path / "figures")
    text = path.read_text()
    for stem in ("p_broken", "time_to_converge", "p_converged", "survival_tiny_bias_only"):
        assert (tmp_path / "figures" / f"{stem}.png").stat().st_size > 10_000
        assert (tmp_path / "figures" / f"{stem}.pdf").exists()
        assert f"({stem}.png)" in text
    rows = bias_only.summarize(ds)
    assert [(r["weight_mode"], r["activation"]) for r in rows] == [("constant", "tanh"),
                                                                   ("zero", "tanh")]
    # the table's P(broken) at the largest sigma_b is the dataset's fraction, with Wilson CI
    top = ds.broken.sel(weight_mode="constant", activation="tanh", sigma_b=1e-2)
    k, n = int(top.sum()), top.sizes["seed"]
    low, high = stats.wilson_interval(k, n)
    assert rows[0]["p_broken_top"] == (k / n, low, high)
    assert f"{k / n:.2f} [{low:.2f}, {high:.2f}]" in text
    # sigma_b = 0 with constant weights never breaks symmetry, parameters or functions
    assert rows[0]["p_broken_zero"][0] == 0.0 and rows[0]["p_functional_zero"][0] == 0.0
    fn_top = ds.functionally_broken.sel(weight_mode="constant", activation="tanh",
                                        sigma_b=1e-2)
    assert rows[0]["p_functional_top"][0] == float(fn_top.mean())
    assert "| task | teacher_student" in text and "## Answer" in text
    expected = stats.median_time(
        ds.time_to_converge.sel(weight_mode="zero", activation="tanh", sigma_b=1e-2).values,
        ds.converged.sel(weight_mode="zero", activation="tanh", sigma_b=1e-2).values)
    assert rows[1]["median_top"] == expected
    assert stats.format_median(expected, 300) in text


STAIRCASE = """
name = "staircase"
[task]
name = "teacher_student"
dim = 2
teacher_width = 2
n_train = 32
n_test = 8
[model]
depth = 4
width = 4
[train]
learning_rate = 0.5
steps = 6
dtype = "float64"
[init]
weight_mode = "zero"
[grid]
activation = ["sigmoid", "tanh"]
sigma_b = [0.0, 0.5]
[seeds]
count = 4
[record]
gradient_steps = 6
[report]
section = "staircase"
"""


def test_staircase_section(tmp_path):
    ds = _train(STAIRCASE, tmp_path / "stairs")
    steps = staircase.unlock_steps(ds)
    assert steps[("sigmoid", 0.5)] == [3, 2, 1, 0]  # layer l unlocks at step depth - l
    assert steps[("sigmoid", 0.0)] == [3, 2, 1, 0]  # sigmoid(0) != 0: still unlocks
    assert steps[("tanh", 0.0)] == [None] * 4       # tanh(0) = 0: total stall
    text = reporting.write_report([tmp_path / "stairs"], tmp_path / "fig").read_text()
    assert "| tanh | 0 | -, -, -, - | yes |" in text
    assert (tmp_path / "fig" / "staircase.png").exists()


def test_escape_section_float32_absorbs_tiny_biases(tmp_path):
    text = TINY.replace('name = "tiny_bias_only"', 'name = "escape"').replace(
        'weight_mode = ["constant", "zero", "glorot"]\n', "").replace(
        "sigma_b = [0.0, 1e-6, 1e-4, 1e-2]", "sigma_b = [1e-14, 1e-12, 1e-4]").replace(
        'section = "bias_only"', 'section = "escape"')
    runs = []
    for dtype in ("float32", "float64"):
        study = config.apply_overrides(config.parse_study(text), {"train.dtype": dtype})
        runs.append(tmp_path / dtype)
        ds = _train(study, runs[-1])
        spread = ds.spread.sel(sigma_b=1e-14, activation="tanh").isel(layer=0, step=1).median("seed")
        if dtype == "float64":  # the 1e-14 bias differences survive the first update
            assert 1e-16 < float(spread) < 1e-12
        else:                   # ... but are rounded away in float32
            assert float(spread) < 1e-16
    report_text = reporting.write_report(runs, tmp_path / "fig").read_text()
    assert "## Escape from the symmetric saddle" in report_text
    assert "| float32 | 1e-14 |" in report_text and "| float64 | 1e-14 |" in report_text
    assert (tmp_path / "fig" / "escape.png").exists()


def test_saddle_section_compares_fitted_and_predicted_slopes(tmp_path):
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "experiments" / "saddle_slope.toml"
    study = config.apply_overrides(config.load_study(path, preset="quick"), {
        "seeds.count": 3, "grid.sigma_b": {"logspace": [-14, -10], "num": 3},
        "train.steps": 5000})
    ds = _train(study, tmp_path / "saddle")
    assert study_of(ds).n_networks == study.n_networks  # rebuilt with its overrides
    text = reporting.write_report([tmp_path / "saddle"], tmp_path / "fig").read_text()
    assert "## The log-law slope from the Hessian at the symmetric saddle" in text
    fit = saddle.saddle_fits(ds)["time_to_break"]
    assert f"| steps to break | {fit.b:.1f} [{fit.b_low:.1f}, {fit.b_high:.1f}] | 305.3 |" in text
    assert "multiplicity 7 (width - 1 = 7)" in text
    assert (tmp_path / "fig" / "saddle_slope.png").stat().st_size > 10_000


def test_phase_diagram_section_counts_trained_networks(tmp_path):
    import numpy as np

    from jaxsym.study import tasks
    from jaxsym.theory import meanfield

    text = TINY.replace('name = "tiny_bias_only"', 'name = "phase_diagram"').replace(
        'weight_mode = ["constant", "zero", "glorot"]\nactivation = ["tanh"]\n'
        "sigma_b = [0.0, 1e-6, 1e-4, 1e-2]", "W_std = [0.0, 1.3, 3.0]").replace(
        '[task]\nname = "teacher_student"\ndim = 2\nteacher_width = 2', '[task]\nname = "circles"'
    ).replace("[train]", '[train]\nloss = "bce"').replace("steps = 300", "steps = 100")
    text = text.replace("[grid]", '[init]\nweight_mode = "normal"\nsigma_b = 0.2236\n[grid]')
    text = text.replace('section = "bias_only"', 'section = "phase_diagram"')
    runs = []
    for depth in (3, 2):
        study = config.apply_overrides(config.parse_study(text), {"model.depth": depth})
        runs.append(tmp_path / f"d{depth}")
        _train(study, runs[-1])
    table = phase.phase_table([store.load(r) for r in runs])
    assert list(table["depth"]) == [2, 3] and np.allclose(table["sigma_w2"], [0, 1.69, 9])
    task = tasks.make_task("circles", n_train=64, n_test=16)
    chance = np.bincount(task.y_train).max() / 64
    assert table["threshold"] == 0.5 * (1 + chance)
    acc = store.load(runs[1]).final_accuracy.squeeze().values  # depth 2: (W_std, seed)
    np.testing.assert_array_equal(table["trained"][0], (acc >= table["threshold"]).sum(-1))
    out = reporting.write_report(runs, tmp_path / "fig").read_text()
    assert "## Phase diagram: signal propagation and the bias-only edge" in out
    assert f"sigma_w^2 = {float(meanfield.critical_sigma_w2('tanh', 0.2236 ** 2)):.3f}" in out
    bias_only = table["trained"][:, 0].sum()
    assert f"Measured: {bias_only} of 12 bias-only networks trained" in out
    assert (tmp_path / "fig" / "phase_diagram.png").stat().st_size > 10_000


def test_dtype_floor_and_unit_roundoff():
    import xarray as xr

    assert unit_roundoff("float64") == pytest.approx(2.0 ** -53)
    assert unit_roundoff("float32") == pytest.approx(2.0 ** -24)
    assert unit_roundoff("bfloat16") == pytest.approx(2.0 ** -8)
    sigma = np.array([0.0, 1e-12, 1e-10, 1e-8, 1e-6])

    def dataset(p_broken):
        broken = np.array([[i < round(p * 4) for i in range(4)] for p in p_broken])
        return xr.Dataset({"broken": (("sigma_b", "seed"), broken)},
                          coords={"sigma_b": sigma, "seed": np.arange(4)})

    assert dtype_floor(dataset([0, 0, 0, 1, 1])) == 1e-10
    # a broken cell below an unbroken one: the floor stops at the first break
    assert dtype_floor(dataset([0, 0, 0.25, 0, 1])) == 1e-12
    assert dtype_floor(dataset([0, 1, 1, 1, 1])) == 0.0
    assert np.isnan(dtype_floor(dataset([0.5, 1, 1, 1, 1])))


def test_report_of_any_user_grid_goes_into_its_run_dir(tmp_path, capsys):
    """A user-written config with a categorical and a numeric axis: `jaxsym report RUN_DIR`
    writes a full report (setup, one row per grid point with CIs, the overview figure) into
    RUN_DIR/report and leaves the tracked figures/ alone; several run dirs need --out."""
    from pathlib import Path

    from jaxsym import cli

    text = (Path(__file__).resolve().parents[1] / "experiments" / "example.toml").read_text()
    text = text.replace('name = "example"', 'name = "my_grid"').replace(
        "sigma_b = {logspace = [-8, -1], num = 5, zero = true}",
        'activation = ["tanh", "relu"]\nlearning_rate = [0.05, 0.2]\nsigma_b = [0.0, 1e-3, 1e-1]')
    (tmp_path / "mine.toml").write_text(text)
    run = tmp_path / "run"
    assert cli.main(["run", str(tmp_path / "mine.toml"), "--out", str(run), "--steps", "40",
                     "--seeds", "2", "--no-progress"]) == 0
    tracked = Path(__file__).resolve().parents[1] / "figures" / "REPORT.md"
    before = tracked.stat().st_mtime_ns if tracked.exists() else None
    assert cli.main(["report", str(run)]) == 0
    report_md = (run / "report" / "REPORT.md").read_text()
    assert "## my_grid" in report_md and "### Setup" in report_md
    rows = [l for l in report_md.splitlines() if l.startswith("| tanh |") or l.startswith("| relu |")]
    assert len(rows) == 2 * 2 * 3
    for line in rows:  # every P with its Wilson interval, every median with its CI or "> budget"
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[4].count("[") == cells[6].count("[") == 1, line
        assert all("[" in c or c == "> 40" for c in (cells[5], cells[7])), line
    assert "| activation | learning_rate | sigma_b | networks |" in report_md
    assert (run / "report" / "overview_my_grid.png").exists()
    assert (tracked.stat().st_mtime_ns if tracked.exists() else None) == before
    capsys.readouterr()
    assert cli.main(["report", str(run), str(run)]) == 2
    assert "argument --out: required with several run directories" in capsys.readouterr().err


def test_report_is_rewritten_only_when_a_number_changes(tmp_path):
    """The main job on a fresh clone records another git sha and maybe another machine: the
    committed REPORT.md is then left as it is (git status stays clean); a changed number
    rewrites it."""
    path = tmp_path / "REPORT.md"
    text = ("# jaxsym report\n\n| setting | value |\n|---|---|\n| seeds | 24 |\n"
            "| run | 2 cpu device(s), git 0123456789 |\n| machine | AMD EPYC (AVX512) |\n"
            "P(broken) = 0.50 [0.31, 0.69]\n")
    assert write_text_if_changed(path, text)
    stamp = path.stat().st_mtime_ns
    other_machine = text.replace("0123456789", "abcdef0123").replace("AMD EPYC", "Intel Xeon")
    assert not write_text_if_changed(path, other_machine)
    assert path.read_text() == text and path.stat().st_mtime_ns == stamp
    changed = other_machine.replace("0.50 [0.31", "0.54 [0.31")
    assert write_text_if_changed(path, changed)
    assert path.read_text() == changed


XOR_GELU = """
name = "xor_gelu"
[task]
name = "xor"
n_train = 64
n_test = 64
[model]
depth = 2
width = 8
[train]
loss = "softmax_ce"
learning_rate = 0.5
steps = 1000
[grid]
weight_mode = ["constant", "zero", "glorot"]
activation = ["gelu"]
sigma_b = [0.0, 1e-2]
[seeds]
count = 4
[thresholds]
loss = 0.1
[report]
section = "bias_only"
"""


def test_bias_only_says_where_identical_units_learn_anyway(tmp_path):
    """Breaking the symmetry is not learning: identical gelu units (constant W, sigma_b = 0)
    fit xor along (1, 1) while their W rows stay parallel; the table gives each cell's test
    accuracy next to P(broken), and the answer names the cell. W = 0 with b = 0 stalls (gelu(0)
    = 0): no such claim there. A grid without tanh gets its survival figure too."""
    run = tmp_path / "run"
    ds = _train(XOR_GELU, run)
    text = reporting.write_report([run], tmp_path / "figures").read_text()
    assert (tmp_path / "figures" / "survival_xor_gelu.png").exists()
    rows = {r["weight_mode"]: r for r in bias_only.summarize(ds)}
    const, zero = rows["constant"], rows["zero"]
    cell = ds.sel(weight_mode="constant", activation="gelu", sigma_b=0.0)
    glorot = ds.sel(weight_mode="glorot", activation="gelu", sigma_b=0.0)
    assert const["p_broken_zero"][0] == 0.0
    assert const["test_zero"] == stats.mean_interval(cell.test_accuracy.values, bounds=(0, 1))
    assert const["test_glorot"] == stats.mean_interval(glorot.test_accuracy.values,
                                                       bounds=(0, 1))
    assert const["test_zero"].mean >= 0.98 * const["test_glorot"].mean > 0.9
    assert const["collapsed_learns"] and not zero["collapsed_learns"]
    assert const["p_converged_glorot"] == float(glorot.converged.mean()) >= 0.5
    assert zero["test_zero"].mean < 0.8
    assert "the collapsed network learned the task anyway for gelu (test accuracy" in text
    assert text.count("learned the task anyway") == 1
    assert "| test score, sigma_b = 0 | test score, largest sigma_b | test score, Glorot |" in text


def test_matching_a_baseline_that_failed_too_is_not_learning():
    """The 'learned anyway' rule: identical units that did not converge count only against a
    Glorot baseline that did (a linear network on xor matches its failing Glorot twin), within
    the calibration's margin, and never where the symmetry broke at sigma_b = 0."""
    interval = stats.MeanInterval
    row = {"p_broken_zero": (0.0, 0.0, 0.2), "p_converged_zero": (0.0, 0.0, 0.2),
           "classification": True, "test_zero": interval(0.5, 0.5, 0.5, 4),
           "test_glorot": interval(0.5, 0.45, 0.55, 4), "p_converged_glorot": 0.0}
    assert not bias_only.collapsed_learns(row)
    assert bias_only.collapsed_learns({**row, "p_converged_glorot": 1.0})
    assert not bias_only.collapsed_learns({**row, "p_converged_glorot": 1.0,
                                           "test_zero": interval(0.48, 0.48, 0.48, 4)})
    assert not bias_only.collapsed_learns({**row, "p_converged_glorot": 1.0,
                                           "p_broken_zero": (0.25, 0.1, 0.5)})
    assert bias_only.collapsed_learns({**row, "p_converged_zero": (0.75, 0.4, 0.9)})
    loss = {**row, "classification": False, "p_converged_glorot": 1.0,
            "test_glorot": interval(0.01, 0.005, 0.02, 4)}
    assert bias_only.collapsed_learns({**loss, "test_zero": interval(0.019, 0.019, 0.019, 4)})
    assert not bias_only.collapsed_learns({**loss, "test_zero": interval(0.021, 0.02, 0.02, 4)})
