"""Noise that keeps identical units identical (minibatches, label noise): the engine keeps them
bitwise identical, and the linearised escape along each network's OWN noisy symmetric
trajectory predicts each network's break (jaxsym.theory.escape.noisy_escapes)."""

import jax
import numpy as np
import pytest

from jaxsym.study import config, plan
from jaxsym.engine.run import run_study
from jaxsym.core.precision import float64_scope
from jaxsym.theory import escape, predict

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
checkpoints = 3
gradient_steps = 0
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


def test_each_networks_break_under_noise_is_predicted(tmp_path):
    """Each network breaks at T(||d||) of the linear map along its own noisy trajectory, to 2
    steps or 2%, for every batch size and label noise; full batch without label noise is the
    deterministic linearised escape."""
    study = config.parse_study(STUDY)
    ds = run_study(study, tmp_path / "run", progress=False)
    pred = predict.noisy_escape_times(study)
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
