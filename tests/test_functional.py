"""The functional symmetry metric (s2/s1 and effective rank of the centred hidden activations),
the validation split and the held-out curves, against NumPy and against their stated laws."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsym.core import metrics
from jaxsym.core.network import run_network
from jaxsym.core.spec import WEIGHT_MODES, NetworkSpec, checkpoint_steps
from jaxsym.engine.runner import task_data
from jaxsym.study import config, tasks

#: one xdist worker runs this module, so its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group("test_functional")


def _numpy_scores(H):
    centred = H - H.mean(axis=0)
    s = np.linalg.svd(centred, compute_uv=False)
    p = s / s.sum()
    p = p[p > 0]
    return s[1] / s[0], np.exp(-np.sum(p * np.log(p)))


@pytest.mark.parametrize("shape", [(64, 5), (7, 17), (300, 33)])
def test_functional_scores_match_numpy(shape):
    rng = np.random.default_rng(sum(shape))
    H = rng.standard_normal(shape) @ np.diag(np.linspace(1.0, 0.1, shape[1])) + 3.0
    diversity, erank = metrics.functional_scores(jnp.asarray(H))
    expected = _numpy_scores(H)
    assert float(diversity) == pytest.approx(expected[0], rel=1e-10)
    assert float(erank) == pytest.approx(expected[1], rel=1e-10)
    assert 1.0 < float(erank) <= min(shape)


def test_functional_scores_exact_cases():
    rng = np.random.default_rng(0)
    column = rng.standard_normal((50, 1))
    same = metrics.functional_scores(jnp.asarray(np.tile(column, (1, 17))))
    assert (float(same[0]), float(same[1])) == (0.0, 1.0)  # identical units: one function
    constant = metrics.functional_scores(jnp.asarray(np.tile(rng.standard_normal(17), (50, 1))))
    assert (float(constant[0]), float(constant[1])) == (0.0, 0.0)  # distinct constants only
    # a column plus a constant per unit is the same function up to a constant
    shifted = metrics.functional_scores(jnp.asarray(column + rng.standard_normal(17)))
    assert float(shifted[0]) < 1e-14 and float(shifted[1]) == pytest.approx(1.0, abs=1e-12)
    # k equally strong orthogonal functions: effective rank k
    q, _ = np.linalg.qr(rng.standard_normal((50, 3)))
    q -= q.mean(axis=0)
    q, _ = np.linalg.qr(q)
    assert float(metrics.functional_scores(jnp.asarray(q))[1]) == pytest.approx(3.0, rel=1e-9)


def _spec(activation, width=17, steps=40, batch_size=0, validation=False, dtype="float64"):
    return NetworkSpec((2, width, 1), activation, "bce", "sgd", True, steps, batch_size, dtype,
                       checkpoint_steps(steps, 6), 2, 1e-2, 1e-1, True, validation=validation)


def _run(spec, sigma_b, task, mode="constant", seed=0):
    knobs = dict(sigma_b=sigma_b, weight_value=1.0, W_std=1.0, learning_rate=0.5, eps=0.0,
                 noise=0.0, weight_mode=float(WEIGHT_MODES.index(mode)))
    data = task_data(task, spec.loss)
    out = jax.jit(run_network, static_argnums=3)(jax.random.key(seed), knobs, data, spec)
    return jax.tree.map(np.asarray, out)


@pytest.fixture(scope="module")
def xor():
    return tasks.make_task("xor", seed=1, n_train=96, n_test=64)


@pytest.mark.parametrize("batch_size", [0, 16])
@pytest.mark.parametrize("activation", ["gelu", "relu", "tanh"])
def test_identical_units_are_functionally_identical_at_every_checkpoint(xor, activation,
                                                                       batch_size):
    """sigma_b = 0 at odd width 17: the centred activations' columns stay bitwise equal, so the
    functional diversity is exactly 0 and the effective rank exactly 1 at every checkpoint."""
    out = _run(_spec(activation, batch_size=batch_size), 0.0, xor)
    assert (out["functional_diversity"] == 0.0).all()
    assert (out["effective_rank"] == 1.0).all()
    assert not out["functionally_broken"]


def test_the_metric_separates_what_the_parameter_metric_cannot(xor):
    """Constant W, distinct biases: the rows of W are parallel (s2/s1 of W ~ rounding) but
    nonlinear units compute different functions from step 0; linear units compute one
    function plus constants (functional diversity ~ rounding)."""
    gelu = _run(_spec("gelu", steps=1), 1.0, xor)
    assert gelu["diversity"][0, 0] < 1e-12 and gelu["functional_diversity"][0, 0] > 0.05
    assert gelu["effective_rank"][0, 0] > 1.3
    linear = _run(_spec("linear", steps=1), 1.0, xor)
    assert linear["functional_diversity"][0, 0] < 1e-12
    assert linear["effective_rank"][0, 0] == pytest.approx(1.0, abs=1e-9)


def test_functionally_broken_is_the_last_checkpoint_over_the_threshold(xor):
    for sigma_b in (1e-4, 1.0):
        out = _run(_spec("tanh", steps=60), sigma_b, xor)
        last = out["functional_diversity"][-1]
        assert bool(out["functionally_broken"]) == bool((last > 1e-2).all())


def test_hold_out_moves_the_last_training_rows():
    task = tasks.make_task("spirals", seed=3, n_train=100, n_test=20)
    held = tasks.hold_out(task, 30)
    assert held.x_train.shape == (70, 2) and held.n_val == 30
    np.testing.assert_array_equal(held.x_val, task.x_train[70:])
    np.testing.assert_array_equal(held.y_val, task.y_train[70:])
    np.testing.assert_array_equal(held.x_test, task.x_test)
    assert tasks.hold_out(task, 0) is task
    with pytest.raises(ValueError, match="task.validation must be in"):
        tasks.hold_out(task, 99)


def test_validation_config_key_and_its_errors():
    text = ('[task]\nname = "spirals"\nn_train = 100\nn_test = 20\nvalidation = 30\n'
            '[train]\nloss = "bce"\n')
    study = config.parse_study(text)
    assert study.make_task(0).n_val == 30 and study.make_task(0).x_train.shape[0] == 70
    assert "validation" not in study.task_options
    with pytest.raises(config.ConfigError, match="task.validation.*>= 0"):
        config.parse_study(text.replace("validation = 30", "validation = -1"))
    with pytest.raises(config.ConfigError, match="train.batch_size.*70"):
        config.parse_study(text + "batch_size = 80\n")


def test_validation_and_test_curves_equal_direct_evaluation(xor):
    """val_loss / val_accuracy / test_*_curve at the last checkpoint = the final network
    evaluated directly; the validation rows are not trained on (different curves)."""
    held = tasks.hold_out(xor, 32)
    spec = _spec("tanh", steps=30, validation=True)
    out = _run(spec, 1.0, held)
    assert out["val_loss"].shape == out["loss"].shape == out["test_accuracy_curve"].shape
    assert out["test_loss_curve"][-1] == pytest.approx(float(out["test_loss"]), rel=1e-12)
    assert out["test_accuracy_curve"][-1] == out["test_accuracy"]
    assert 0.0 <= out["val_accuracy"].min() and out["val_accuracy"].max() <= 1.0
    assert not np.allclose(out["val_loss"], out["loss"])
    no_val = _run(_spec("tanh", steps=30), 1.0, held)
    assert "val_loss" not in no_val
    np.testing.assert_array_equal(no_val["loss"], out["loss"])  # same training, same records
