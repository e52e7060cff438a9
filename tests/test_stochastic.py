"""Noise that keeps identical units identical (minibatches, label noise): the engine keeps them
bitwise identical, and the linearised escape along each network's OWN noisy symmetric
trajectory predicts each network's break (jaxsym.theory.escape.noisy_escapes)."""

import jax
import numpy as np
import pytest

from jaxsym.analysis import stochastic
from jaxsym.study import config, plan
from jaxsym.engine.run import run_study
from jaxsym.core.precision import float64_scope
from jaxsym.theory import escape, predict

#: one xdist worker runs this module, so its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group("test_stochastic")

STUDY = """
name = "noisy_check"
[task]
name = "teacher_student"
dim = 2
teacher_width = 2
n_train = 32
n_test = 8
[model]
depth = 2
width = 5
activation = "tanh"
[train]
loss = "mse"
optimizer = "sgd"
learning_rate = 0.2
steps = 600
dtype = "float64"
[init]
weight_mode = "constant"
weight_value = 0.25
sigma_b = 1e-5
[grid]
batch_size = [1, 4, 0]
label_noise = [0.0, 0.5]
[seeds]
count = 12
[record]
checkpoints = 8
gradient_steps = 0
[report]
section = "stochastic"
"""


def test_batch_size_axis_is_static_and_label_noise_needs_a_regression():
    study = config.parse_study(STUDY)
    groups = plan.plan_groups(study, study.make_task(0))
    assert [g.spec.batch_size for g in groups] == [1, 4, 0]
    assert all(g.spec.label_noisy for g in groups)
    with pytest.raises(config.ConfigError, match="grid.batch_size.*<= task.n_train"):
        config.parse_study(STUDY.replace("[1, 4, 0]", "[1, 33]"))
    with pytest.raises(config.ConfigError, match="train.label_noise.*regression"):
        config.parse_study(STUDY.replace('"teacher_student"', '"xor"')
                           .replace('loss = "mse"', 'loss = "bce"').replace("n_train = 16\n", "")
                           .replace("n_test = 8\n", "").replace("dim = 2\n", "")
                           .replace("teacher_width = 2\n", ""))
    with pytest.raises(config.ConfigError, match="label_noise.*>= 0"):
        config.parse_study(STUDY.replace("[0.0, 0.5]", "[-0.5]"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_identical_units_stay_identical_under_minibatch_and_label_noise(dtype):
    """Identical units at odd widths (17, 33 -> 16) with minibatches AND label noise: every unit
    sees the same noisy batch, so after 300 steps the units are bitwise identical (twin
    difference exactly 0.0) while the parameters moved."""
    import jax.numpy as jnp

    from jaxsym.core import dense, exactness, train

    rng = np.random.default_rng(7)
    x = jnp.asarray(rng.standard_normal((24, 3)), dtype)
    y = jnp.asarray(rng.standard_normal((24, 2)), dtype)
    for hidden in ((17,), (33, 16)):
        sizes = (3,) + hidden + (2,)
        start = exactness.symmetric_params(rng, sizes, dtype)
        tx, step = train.make_step(x, y, layer_sizes=sizes, activation="tanh", loss="mse",
                                   optimizer="momentum", learning_rate=0.05, batch_size=5,
                                   key=jax.random.key(1), label_noise=0.5,
                                   label_key=jax.random.key(2))

        def body(carry, t):
            p, opt_state = carry
            _, _, p, opt_state = step(p, opt_state, t)
            return (p, opt_state), None

        padded = dense.pad_params(start)
        (padded, _), _ = jax.jit(lambda c: jax.lax.scan(body, c, jnp.arange(300)))(
            (padded, tx.init(padded)))
        final = dense.unpad_params(padded, sizes)
        assert float(exactness.twin_asymmetry(final)) == 0.0, hidden
        assert float(jnp.abs(final[0]["b"] - start[0]["b"]).max()) > 1e-3


@pytest.fixture(scope="module")
def noisy_run(tmp_path_factory):
    """The small noisy study, trained once: (study, run directory, results)."""
    study = config.parse_study(STUDY)
    run_dir = tmp_path_factory.mktemp("noisy") / "run"
    return study, run_dir, run_study(study, run_dir, progress=False)


def test_each_networks_break_under_noise_is_predicted(noisy_run):
    """Each network breaks at T(||d||) of the linear map along its own noisy trajectory, to 2
    steps or 2%, for every batch size and label noise; full batch without label noise is the
    deterministic linearised escape."""
    from jaxsym.analysis.predictions import cached

    study, run_dir, ds = noisy_run
    pred = cached("noisy_escape", study, run_dir, predict.noisy_escape_times)  # the report's
    n_checked = 0
    for g, point in enumerate(plan.grid_points(study)):
        d = ds.sel(point)
        measured = np.where(d.broken.values, d.time_to_break.values, np.inf)
        predicted = pred[g]["time"]
        assert np.array_equal(np.isfinite(predicted), np.isfinite(measured)), point
        both = np.isfinite(measured)
        assert np.all(np.abs(predicted[both] - measured[both])
                      <= np.maximum(2.0, 0.02 * measured[both])), point
        n_checked += both.sum()
    assert n_checked >= 48
    # the noise changes the break times (the test would pass vacuously if it did nothing)
    full = ds.sel(batch_size=0, label_noise=0.0).time_to_break.values
    one = ds.sel(batch_size=1, label_noise=0.0).time_to_break.values
    assert not np.array_equal(full, one)
    # full batch, no label noise: noisy_escapes is linearised_escape, whatever the keys
    from jaxsym.core import init, spec as core_spec

    task = study.make_task(0)
    with float64_scope():
        g = next(g for g, p in enumerate(plan.grid_points(study))
                 if p == {"batch_size": 0, "label_noise": 0.0})
        params = init.init_params(jax.random.key(0), predict._float64_knobs(
            plan.knob_table(study)[g], sigma_b=0.0),
            core_spec.Architecture((2, 5, 1), True, "float64"))
        x, y = predict._float64_data(task, "mse")
        one_path = escape.linearised_escape(params, x, y, "tanh", "mse", "sgd", 0.2, 600)
        many = escape.noisy_escapes(params, x, y, "tanh", "mse", "sgd", 0.2, 600, 1e-2, 0,
                                    jax.random.split(jax.random.key(3), 2))
    for p in many:
        np.testing.assert_array_equal(p.log_amplitude, one_path.log_amplitude)


def test_crossing_agreement_and_window_rates():
    assert stochastic.crossing([0, 1, 2], [0.0, 0.4, 0.8]) == pytest.approx(1.25)
    assert stochastic.crossing([0, 1, 2], [1.0, 0.5, 0.0]) == 1.0
    assert np.isnan(stochastic.crossing([0, 1], [0.6, 0.9]))
    agree = stochastic.network_agreement([100.0, np.inf, 100.0, 1000.0, np.inf],
                                         [101.0, np.inf, 110.0, 1019.0, 500.0])
    assert agree.tolist() == [True, True, False, True, False]
    # a spread growing (or shrinking) at rate r, predicted exactly: both rates are r; spreads
    # at the rounding floor and after the break are not read
    steps = np.array([0, 10, 100, 400, 800, 1600, 3200])
    for r in (3e-3, -4e-3):
        spread = 1e-6 * np.exp(r * steps)[None, :]
        log_amp = (-r * steps)[None, :].astype(float)
        measured, predicted = stochastic.window_rates(spread, steps, np.array([np.inf]),
                                                      log_amp)
        assert measured[0] == pytest.approx(r) and predicted[0] == pytest.approx(r)
    spread = np.array([[1e-6, 1e-6, 1e-7, 1e-9, 1e-11, 1e-13, 1e-15]])
    measured, _ = stochastic.window_rates(spread, steps, np.array([np.inf]),
                                          np.zeros((1, 7)))
    assert measured[0] == pytest.approx(np.log(1e-11 / 1e-9) / 400)  # window 400 -> 800


def test_the_section_reports_the_networks_and_the_toy(noisy_run, tmp_path, monkeypatch):
    """The stochastic section renders from the stored run: the per-network count, one table per
    cell, the critical label noise and the toy (shrunk here: 32 seeds, 2 levels)."""
    from jaxsym import reporting
    from jaxsym.theory import collapse_toy

    monkeypatch.setattr(stochastic, "_toy", lambda _study: collapse_toy.toy_outcomes(
        noise=(0.0, 0.8), seeds=32, steps=2000))
    study, run_dir, _ = noisy_run
    text = reporting.write_report([run_dir], tmp_path / "fig").read_text()
    total = 6 * 12
    assert f"predicts the break of {total} of {total} networks" in text
    assert text.count("| B | P(broken)") == 2  # one table per label-noise cell
    assert "critical batch size" in text and "two-GELU toy" in text
    assert ("**What does noise during training do?** Minibatches and label noise are the same "
            "for every unit") in text and f"predicted {total} of {total} networks" in text
    assert (tmp_path / "fig" / "stochastic_noisy_check.png").exists()


def test_the_toy_starts_from_distinct_units_that_label_noise_collapses():
    """Chen et al.'s toy: without label noise the two different units stay different in every
    run (the dynamics is deterministic); with noise 0.8 a fraction collapse onto one."""
    from jaxsym.theory import collapse_toy

    out = collapse_toy.toy_outcomes(noise=(0.0, 0.8), seeds=64)
    assert out["identical"][0] == 0 and out["collapsed"][0] == 0
    assert np.all(out["distance"][0] == out["distance"][0][0])  # one deterministic run
    assert out["identical"][1] >= 4


def test_the_cross_machine_comparison_checks_every_network(noisy_run, tmp_path):
    """benchmarks/cross_machine.py on a stochastic run: the same run twice agrees at every grid
    point; one network's break moved by 5% is flagged at its grid point only."""
    import os
    import shutil
    import sys

    import xarray as xr

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
    import cross_machine

    _, run_dir, ds = noisy_run
    ref, other = tmp_path / "ref", tmp_path / "other"
    for root in (ref, other):
        (root / "minibatch_noise-x").mkdir(parents=True)
        shutil.copy(run_dir / "results.nc", root / "minibatch_noise-x" / "results.nc")
    same = cross_machine.compare(ref, other, ["minibatch_noise-x"])
    assert len(same) == 6 and all(r["same"] for r in same)
    moved = ds.load().copy(deep=True)
    k = int(np.flatnonzero(moved.broken.values.reshape(-1))[0])
    t = moved.time_to_break.values.reshape(-1)
    t[k] = int(t[k] * 1.05) + 3
    moved["time_to_break"] = (moved.time_to_break.dims, t.reshape(moved.time_to_break.shape))
    moved.to_netcdf(other / "minibatch_noise-x" / "results.nc")
    xr.backends.file_manager.FILE_CACHE.clear()
    differ = [r for r in cross_machine.compare(ref, other, ["minibatch_noise-x"])
              if not r["same"]]
    assert len(differ) == 1


def test_a_decayed_cell_gets_no_undecayed_full_batch_reference():
    """The deterministic full-batch reference is the UNdecayed saddle's Hessian: a cell with
    weight decay gets none, an undecayed one the entry of its activation and learning rate."""
    study = config.parse_study(STUDY.replace("batch_size = [1, 4, 0]", "batch_size = [0]")
                               .replace("label_noise = [0.0, 0.5]",
                                        "weight_decay = [0.0, 0.001]"))
    ref = {"hessian": 0.01, "map": 0.01, "reached_at": 5}
    pred = {("saddle", (("activation", "tanh"),), 0.2): ref,
            ("saddle", (("activation", "tanh"),), 0.1): {"hessian": 0.02}}
    static = (("activation", "tanh"),)
    assert stochastic.saddle_reference(pred, static, {"weight_decay": 0.0}, study) is ref
    assert stochastic.saddle_reference(pred, static, {"weight_decay": 0.001}, study) is None
    assert stochastic.saddle_reference(pred, static, {"weight_decay": 0.0,
                                                      "learning_rate": 0.3}, study) is None
