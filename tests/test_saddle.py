"""Saddle theory: the Saxe et al. (2013) escape time against simulated gradient flow, and the
Hessian at the collapsed saddle against the measured log-law slope."""

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from scipy import stats as sps

from jaxsym.study import config, tasks
from jaxsym.core import metrics, network
from jaxsym.core.init import init_mlp
from jaxsym.core.spec import KNOBS
from jaxsym.engine import runner
from jaxsym.study import plan

from jaxsym.theory import backprop, predict, saddle

#: one xdist worker runs this module, so its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group("test_saddle")

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def test_saxe_published_value():
    # exactly 9.21024...; quoted as 9.2103 in the issue (within 1e-4)
    assert saddle.saxe_escape_time(1.0, 1.0, 1e-4, 1 - 1e-4) == pytest.approx(9.2103, abs=1e-4)
    # with u_f = s - u0 the formula reduces to (tau / s) ln((s - u0) / u0)
    assert saddle.saxe_escape_time(1.0, 1.0, 1e-4, 1 - 1e-4) == pytest.approx(
        np.log((1 - 1e-4) / 1e-4), rel=1e-12)


@pytest.mark.parametrize("s,tau,u0", [(1.0, 1.0, 1e-4), (2.0, 0.5, 1e-3)])
def test_gradient_flow_matches_the_analytic_time(s, tau, u0):
    u_final = s * (1 - 1e-4)
    expected = saddle.saxe_escape_time(s, tau, u0, u_final)
    simulated = saddle.simulate_balanced_linear(s, tau, u0, u_final, dt=2e-3)
    assert simulated == pytest.approx(expected, rel=5e-3)


def test_escape_time_grows_like_log_of_inverse_init():
    times = [saddle.saxe_escape_time(1.0, 1.0, u0, 0.5) for u0 in (1e-2, 1e-4, 1e-6)]
    # (tau / 2s) ln(10^2) per two decades of u0, up to the ln(s - u0) term (~ u0 / s)
    np.testing.assert_allclose(np.diff(times), np.log(100) / 2, rtol=3e-3)
    with pytest.raises(ValueError, match="need 0 < u0 < u_final < s"):
        saddle.saxe_escape_time(1.0, 1.0, 0.5, 0.4)


# --- the collapsed saddle of an MLP ---------------------------------------------------------


LR = 0.1


def _symmetric_problem(width, dim=2, n_train=64, activation="tanh"):
    task = tasks.make_task("teacher_student", dim=dim, teacher_width=2, n_train=n_train,
                           n_test=8)
    data = runner.task_data(task, "mse")
    params = init_mlp(jax.random.key(0), (dim, width, 1), "constant", weight_value=0.25,
                              fan_in_scaled=True, dtype=jnp.float64)
    return params, data["x_train"], data["y_train"], activation


@pytest.fixture(scope="module")
def saddle4():
    params, x, y, act = _symmetric_problem(width=4)
    point, steps, gnorm = saddle.collapsed_point(params, x, y, act, "mse", LR)
    return point, x, y, act, steps, gnorm


def test_collapsed_point_is_symmetric_critical_point(saddle4):
    point, x, y, act, steps, gnorm = saddle4
    assert gnorm <= 1e-12 and steps < 200_000
    units = jnp.concatenate([point[0]["W"], point[0]["b"][:, None]], axis=1)
    assert float(metrics.unit_spread(units)) == 0.0
    # here plain gradient descent (no projection) keeps the units identical up to rounding and
    # reaches the same point: the projection only removes rounding asymmetry
    params, _, _, _ = _symmetric_problem(width=4)
    plain, plain_steps, _ = saddle.collapsed_point(params, x, y, act, "mse", LR, project=False)
    assert abs(plain_steps - steps) <= 2
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-10), plain, point)


@pytest.mark.parametrize("width", [3, 6])
def test_saddle_spectrum_antisymmetric_with_multiplicity_width_minus_one(width):
    params, x, y, act = _symmetric_problem(width)
    point, _, _ = saddle.collapsed_point(params, x, y, act, "mse", LR)
    spec = saddle.saddle_spectrum(point, x, y, act, "mse")
    assert spec.lambda_min < -1e-3  # a true saddle, not a minimum
    assert spec.multiplicity == width - 1
    assert spec.symmetric_fraction <= 1e-8  # every unstable eigenvector moves units apart
    # and the next eigenvalue is well separated from the unstable eigenspace
    assert spec.eigenvalues[width - 1] > spec.lambda_min * (1 - 1e-3)
    # eigenvectors really are eigenvectors of the JAX Hessian
    flat, unravel = ravel_pytree(point)
    hvp = jax.jvp(jax.grad(lambda th: backprop_free_loss(th, unravel, x, y, act)), (flat,),
                  (jnp.asarray(spec.eigenvectors[:, 0]),))[1]
    np.testing.assert_allclose(hvp, spec.lambda_min * spec.eigenvectors[:, 0], atol=1e-10)


def backprop_free_loss(theta, unravel, x, y, act):
    from jaxsym.core import train

    return train.loss_of_params(unravel(theta), x, y, act, "mse")


def test_hessian_matches_finite_differences_of_the_numpy_oracle(saddle4):
    """The Hessian we diagonalise is the derivative of the textbook backprop gradient."""
    point, x, y, act, _, _ = saddle4
    flat, unravel = ravel_pytree(point)
    hessian = np.asarray(jax.hessian(lambda th: backprop_free_loss(th, unravel, x, y, act))(flat))

    def oracle_grad(theta):
        _, grads = backprop.gradients(jax.tree.map(np.asarray, unravel(jnp.asarray(theta))),
                                      np.asarray(x), np.asarray(y), act, "mse")
        return np.asarray(ravel_pytree(jax.tree.map(jnp.asarray, grads))[0])

    h = 1e-6
    theta = np.asarray(flat)
    columns = []
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h
        columns.append((oracle_grad(theta + e) - oracle_grad(theta - e)) / (2 * h))
    np.testing.assert_allclose(np.stack(columns, axis=1), hessian, atol=1e-7)


@pytest.mark.parametrize("optimizer,lr", [("sgd", LR), ("momentum", 0.01)])
def test_linearised_growth_at_the_saddle_is_the_predicted_factor(saddle4, optimizer, lr):
    point, x, y, act, _, _ = saddle4
    spec = saddle.saddle_spectrum(point, x, y, act, "mse")
    _, unravel = ravel_pytree(point)
    direction = unravel(jnp.asarray(spec.eigenvectors[:, 0]))
    growth = saddle.linearised_growth(point, direction, x, y, act, "mse", lr, 400, optimizer)
    expected = math.log(saddle.growth_factor(lr, spec.lambda_min, optimizer))
    # momentum starts with zero velocity: its slower root decays by (beta / r) per step
    np.testing.assert_allclose(growth[-50:], expected, rtol=1e-6)


def test_growth_factor_formulas():
    assert saddle.growth_factor(0.1, -2.0) == pytest.approx(1.2, rel=1e-15)
    assert saddle.predicted_slope(0.1, -2.0) == pytest.approx(math.log(10) / math.log(1.2),
                                                              rel=1e-14)
    r = saddle.growth_factor(0.01, -0.5, "momentum", 0.9)
    assert r * r - (1 + 0.9 + 0.005) * r + 0.9 == pytest.approx(0.0, abs=1e-14)
    # small lr |lambda|: momentum multiplies the effective step by 1 / (1 - beta)
    assert saddle.growth_factor(1e-6, -1.0, "momentum", 0.9) - 1 == pytest.approx(1e-5, rel=1e-3)
    assert saddle.growth_factor(0.1, -1.0, "momentum", 0.0) == pytest.approx(1.1, rel=1e-14)
    with pytest.raises(ValueError, match="allowed: sgd, momentum"):
        saddle.growth_factor(0.1, -1.0, "adam")
    with pytest.raises(ValueError, match="> 0"):
        saddle.growth_factor(0.1, 0.0)


def test_adam_has_no_constant_escape_rate():
    """Along the trajectory from the symmetric init towards the saddle, gradient descent's growth
    rate of an antisymmetric perturbation settles (at log(1 + lr |lambda_min|)), while Adam's
    keeps rising: its second-moment estimate decays as the gradient vanishes, so its per-coordinate
    step lr / (sqrt(v) + eps) keeps growing."""
    params, x, y, act = _symmetric_problem(width=4)
    noise = jax.tree.map(jnp.zeros_like, params)
    noise[0]["b"] = jnp.asarray([1.0, -2.0, 0.5, 0.5])
    sgd = saddle.linearised_growth(params, noise, x, y, act, "mse", LR, 4000, "sgd")
    adam = saddle.linearised_growth(params, noise, x, y, act, "mse", 1e-3, 4000, "adam")
    assert sgd[3999] == pytest.approx(sgd[2999], rel=0.02)
    assert adam[3999] > 2 * adam[999] > 0


def test_symmetric_projection_splits_symmetric_and_antisymmetric():
    params = init_mlp(jax.random.key(1), (3, 5, 4, 2), "normal", W_std=1.0, sigma_b=1.0,
                              dtype=jnp.float64)
    projected = saddle.symmetric_projection(params)
    again = saddle.symmetric_projection(projected)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-15), projected, again)
    # the projection is orthogonal: the residual is orthogonal to the symmetric part
    flat_p = ravel_pytree(projected)[0]
    flat_r = ravel_pytree(params)[0] - flat_p
    assert abs(float(flat_p @ flat_r)) <= 1e-12 * float(flat_p @ flat_p + flat_r @ flat_r)
    # a symmetric network: all hidden units identical, so it projects to itself
    sym = init_mlp(jax.random.key(2), (3, 5, 4, 2), "constant", weight_value=0.3,
                           dtype=jnp.float64)
    sym = [{"W": layer["W"], "b": jnp.full_like(layer["b"], 0.1)} for layer in sym]
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-15),
                 saddle.symmetric_projection(sym), sym)


def test_measured_log_law_slope_matches_the_hessian_prediction():
    """The bundled saddle_slope experiment's network, float64: time to converge and time to break
    vs log10(1/sigma_b) for sigma_b in [1e-14, 1e-10], against ln 10 / ln(1 + lr |lambda_min|).

    Common random numbers: each seed uses one bias direction at every sigma_b (the same network,
    scaled perturbation), so the seed-to-seed noise of the projection onto the unstable eigenspace
    cancels in the per-seed slope; the sweep itself (independent draws per grid point) is in the
    report with its bootstrap CI."""
    study = config.load_study(EXPERIMENTS / "saddle_slope.toml", preset="quick")
    study = config.apply_overrides(study, {"train.steps": 5000})
    analysis = predict.analyse_saddle(study, trajectory_steps=10)
    assert analysis.spectrum.multiplicity == study.get("model.width") - 1
    predicted = analysis.slope

    task = tasks.make_task(study.get("task.name"), seed=study.get("task.seed"),
                           **study.task_options)
    spec = plan.plan_groups(study, task)[0].spec
    data = runner.task_data(task, spec.loss)
    row = plan.knob_table(study)[0]
    sigmas = np.logspace(-14, -10, 5)

    def one(key, sigma):
        knobs = {k: row[i] for i, k in enumerate(KNOBS)}
        knobs["sigma_b"] = sigma
        r = network.run_network(key, knobs, data, spec)
        return r["time_to_converge"], r["time_to_break"], r["converged"] & r["broken"]

    run = jax.jit(jax.vmap(jax.vmap(one, (None, 0)), (0, None)))
    t_converge, t_break, finished = run(jax.random.split(jax.random.key(0), 4), jnp.asarray(sigmas))
    assert bool(np.all(finished))
    x = np.log10(1 / sigmas)
    t_converge, t_break = np.asarray(t_converge), np.asarray(t_break)
    for times in (t_converge, t_break):  # all seeds pooled: within 1% (the issue asks for 2%)
        pooled = sps.linregress(np.tile(x, len(times)), times.ravel()).slope
        assert pooled == pytest.approx(predicted, rel=0.01)
    # and every seed on its own, for the escape itself (time to break). Individual times to
    # converge can be off by up to ~2%: at sigma_b = 1e-14, float64 rounding (~1e-16) is no
    # longer negligible against the perturbation and can change the escape direction within the
    # (width - 1)-dimensional unstable eigenspace, hence the path from break to convergence.
    slopes = [sps.linregress(x, times).slope for times in t_break]
    np.testing.assert_allclose(slopes, predicted, rtol=0.01)


def test_analyse_saddle_refuses_an_unreached_saddle():
    """A prediction from a point the trajectory never reached is refused, or flagged."""
    study = config.load_study(EXPERIMENTS / "saddle_slope.toml", preset="quick")
    with pytest.raises(saddle.SaddleNotReached, match="did not reach the collapsed point"):
        predict.analyse_saddle(study, max_steps=50, trajectory_steps=2)
    flagged = predict.analyse_saddle(study, max_steps=50, trajectory_steps=2,
                                   require_reached=False)
    assert not flagged.reached and flagged.grad_norm > 1e-12 and flagged.steps_to_saddle == 50
