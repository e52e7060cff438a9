"""Tasks: deterministic given their seed, right shapes, targets that fit each loss."""

import numpy as np
import pytest

from jaxsym.study import tasks

SYNTHETIC = ["teacher_student", "xor", "parity", "spirals", "circles"]


@pytest.mark.parametrize("name", SYNTHETIC)
def test_deterministic_given_seed_and_different_across_seeds(name):
    a, b, c = (tasks.make_task(name, seed=s) for s in (3, 3, 4))
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_train, c.x_train)
    assert a.x_train.shape == (256, a.dim) and a.x_test.shape == (256, a.dim)
    assert np.all(np.isfinite(a.x_train))


@pytest.mark.parametrize("name", ["xor", "parity", "spirals", "circles"])
def test_classification_tasks_are_balanced_binary(name):
    task = tasks.make_task(name, seed=0, n_train=2000, n_test=10)
    assert task.kind == "classification" and task.n_classes == 2
    assert set(np.unique(task.y_train)) == {0, 1}
    assert 0.45 < task.y_train.mean() < 0.55


def test_parity_and_xor_labels_follow_their_rule():
    parity = tasks.make_task("parity", seed=1, dim=5)
    np.testing.assert_array_equal(parity.y_train, np.prod(parity.x_train, axis=1) < 0)
    xor = tasks.make_task("xor", seed=1)  # blobs of std 0.3 around (+-1, +-1)
    agree = (np.sign(xor.x_train[:, 0]) != np.sign(xor.x_train[:, 1])) == xor.y_train
    assert agree.mean() > 0.9


def test_teacher_student_needs_several_hidden_directions():
    """The best one-hidden-unit fit (what a collapsed student is) leaves a large residual."""
    from scipy.optimize import least_squares

    task = tasks.make_task("teacher_student", seed=0, dim=4, teacher_width=4, n_train=2000)
    x, y = task.x_train, task.y_train[:, 0]

    def residual(theta):  # y ~ c tanh(x w + b) + d
        w, b, c, d = theta[:4], theta[4], theta[5], theta[6]
        return c * np.tanh(x @ w + b) + d - y

    rng = np.random.default_rng(0)
    best = min(np.mean(least_squares(residual, rng.standard_normal(7)).fun ** 2)
               for _ in range(5))
    assert best > 0.1 * np.var(y)


@pytest.mark.parametrize("name,loss,width,target_shape", [
    ("teacher_student", "mse", 1, (256, 1)),
    ("xor", "mse", 1, (256, 1)), ("xor", "bce", 1, (256, 1)), ("xor", "softmax_ce", 2, (256,)),
])
def test_targets_and_output_width(name, loss, width, target_shape):
    task = tasks.make_task(name, seed=0)
    assert tasks.output_width(task, loss) == width
    targets = tasks.targets_for_loss(task, task.y_train, loss)
    assert targets.shape == target_shape
    if name == "xor" and loss == "mse":
        assert set(np.unique(targets)) == {-1.0, 1.0}


def test_errors_name_the_choices():
    with pytest.raises(ValueError, match="unknown task 'mnist'; allowed: teacher_student"):
        tasks.make_task("mnist")
    with pytest.raises(ValueError, match="unknown option task.width .*allowed: seed, n_train"):
        tasks.make_task("xor", width=3)
    with pytest.raises(ValueError, match="regression allows: mse"):
        tasks.output_width(tasks.make_task("teacher_student"), "bce")


def test_mnist1d_generated_locally():
    pytest.importorskip("mnist1d", reason="optional data extra not installed")
    task = tasks.make_task("mnist1d", seed=0, n_train=300, n_test=100)
    assert task.x_train.shape == (300, 40) and task.x_test.shape == (100, 40)
    assert set(np.unique(task.y_train)) <= set(range(10))
    np.testing.assert_allclose(task.x_train.mean(axis=0), 0.0, atol=1e-12)
    assert tasks.output_width(task, "softmax_ce") == 10


def test_digits_from_scikit_learn():
    pytest.importorskip("sklearn", reason="optional data extra not installed")
    task = tasks.make_task("digits", seed=0, n_train=1000, n_test=200)
    assert task.x_train.shape == (1000, 64) and task.x_test.shape == (200, 64)
    assert tasks.targets_for_loss(task, task.y_train, "bce").shape == (1000, 10)
