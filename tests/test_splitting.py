"""The splitting matrix (jaxsym.theory.splitting) against jax.hessian, and its width scaling."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from jaxsym.core import train
from jaxsym.theory import saddle, splitting


def _symmetric(rng, d, m, n_out):
    w, b, v = rng.standard_normal(d), 0.3 * rng.standard_normal(), rng.standard_normal(n_out)
    return [{"W": jnp.asarray(np.tile(w, (m, 1))), "b": jnp.full((m,), b)},
            {"W": jnp.asarray(np.tile(v[:, None] / m, (1, m))),
             "b": jnp.asarray(0.1 * rng.standard_normal(n_out))}]


def _targets(rng, loss, n, n_out):
    if loss == "mse":
        return jnp.asarray(rng.standard_normal((n, n_out)))
    if loss == "bce":
        return jnp.asarray((rng.random((n, n_out)) < 0.5).astype(np.float64))
    return jnp.asarray(rng.integers(0, n_out, n))


def _direction(params, a, t):
    """The antisymmetric direction a ⊗ t as a flat parameter vector: unit j moves by a_j t."""
    d = params[0]["W"].shape[1]
    zero = jax.tree.map(jnp.zeros_like, params)
    zero[0]["W"] = jnp.outer(a, t[:d])
    zero[0]["b"] = jnp.asarray(a * t[d])
    zero[1]["W"] = jnp.outer(t[d + 1:], a)
    return ravel_pytree(zero)[0]


CASES = [("tanh", "mse", 1), ("gelu", "bce", 2), ("sin", "softmax_ce", 3), ("softplus", "mse", 2)]


@pytest.mark.parametrize("activation,loss,n_out", CASES)
def test_antisymmetric_block_equals_the_hessian(activation, loss, n_out):
    """At a symmetric (not critical) point: (a ⊗ t)^T H (a' ⊗ t') = (a . a') t^T B t', and the
    Hessian restricted to the antisymmetric subspace has the spectrum of B, each m - 1 times."""
    rng = np.random.default_rng(0)
    d, m, n = 2, 4, 40
    params = _symmetric(rng, d, m, n_out)
    x = jnp.asarray(rng.standard_normal((n, d)))
    y = _targets(rng, loss, n, n_out)
    flat, unravel = ravel_pytree(params)
    H = np.asarray(jax.hessian(lambda th: train.loss_of_params(unravel(th), x, y, activation,
                                                               loss))(flat))
    block = splitting.antisymmetric_block(params, x, y, activation, loss)
    scale = np.abs(block.B).max()
    for _ in range(5):
        a, a2 = (rng.standard_normal(m) for _ in range(2))
        a, a2 = a - a.mean(), a2 - a2.mean()
        t, t2 = (rng.standard_normal(d + 1 + n_out) for _ in range(2))
        lhs = _direction(params, a, t) @ H @ _direction(params, a2, t2)
        assert lhs == pytest.approx((a @ a2) * (t @ block.B @ t2), rel=1e-8, abs=1e-8 * scale)
    # spectrum on the antisymmetric subspace: an orthonormal basis Q of {a: sum a = 0} ⊗ R^k
    k = d + 1 + n_out
    basis_a = np.linalg.qr(np.eye(m)[:, :-1] - 1.0 / m)[0][:, : m - 1]
    Q = np.stack([np.asarray(_direction(params, basis_a[:, i], e))
                  for i, e in itertools.product(range(m - 1), np.eye(k))], axis=1)
    restricted = np.linalg.eigvalsh(Q.T @ H @ Q)
    np.testing.assert_allclose(restricted, np.sort(np.repeat(block.eigenvalues, m - 1)),
                               rtol=1e-8, atol=1e-8 * scale)


def test_not_a_symmetric_point_is_refused():
    rng = np.random.default_rng(1)
    params = _symmetric(rng, 2, 3, 1)
    params[0]["b"] = params[0]["b"].at[1].add(1e-9)
    with pytest.raises(ValueError, match="identical hidden units"):
        splitting.antisymmetric_block(params, jnp.ones((4, 2)), jnp.ones((4, 1)), "tanh", "mse")


def test_collapsed_point_width_scaling():
    """The one-unit optimum duplicated into m units (v / m) is the m-unit collapsed point: R = 0,
    S_m = S_1 / m, and lambda_min of the m-unit Hessian is lambda_min(S_1) / m, m - 1 times."""
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.standard_normal((64, 2)))
    y = jnp.asarray(np.tanh(x @ np.array([1.5, -0.5]))[:, None]
                    + np.tanh(x @ np.array([0.0, 1.5]))[:, None])
    one = _symmetric(rng, 2, 1, 1)
    one, steps, grad_norm = saddle.collapsed_point(one, x, y, "tanh", "mse", 0.5,
                                                   grad_tol=1e-11)
    assert grad_norm <= 1e-11, (steps, grad_norm)
    s1 = splitting.antisymmetric_block(one, x, y, "tanh", "mse").S
    for m in (2, 4, 8):
        params = [{"W": jnp.tile(one[0]["W"], (m, 1)), "b": jnp.tile(one[0]["b"], m)},
                  {"W": jnp.tile(one[1]["W"] / m, (1, m)), "b": one[1]["b"]}]
        grads = jax.grad(train.loss_of_params)(params, x, y, "tanh", "mse")
        assert float(ravel_pytree(grads)[0] @ ravel_pytree(grads)[0]) ** 0.5 <= 1e-10
        block = splitting.antisymmetric_block(params, x, y, "tanh", "mse")
        np.testing.assert_allclose(block.R, 0.0, atol=1e-10)
        np.testing.assert_allclose(block.S, s1 / m, rtol=1e-10, atol=1e-14)
        flat, unravel = ravel_pytree(params)
        H = np.asarray(jax.hessian(lambda th: train.loss_of_params(unravel(th), x, y, "tanh",
                                                                   "mse"))(flat))
        eig = np.linalg.eigvalsh(0.5 * (H + H.T))
        lam = np.linalg.eigvalsh(s1)[0] / m
        assert lam < 0  # this teacher: the collapsed point is a saddle
        assert eig[0] == pytest.approx(lam, rel=1e-7)
        assert int(np.sum(np.abs(eig - lam) <= 1e-7 * abs(lam))) == m - 1


@pytest.mark.parametrize("hidden", [1, 2])
def test_antisymmetric_subspace_is_invariant_at_any_depth(hidden):
    """At a symmetric point of depth 2 or 3, H maps antisymmetric directions to antisymmetric
    ones (no leak into the symmetric subspace); with one hidden layer the restricted spectrum is
    B's, each eigenvalue m - 1 times."""
    from jaxsym.core.init import init_mlp

    rng = np.random.default_rng(4)
    m, d, n = 3, 2, 30
    sizes = (d,) + (m,) * hidden + (1,)
    params = init_mlp(jax.random.key(0), sizes, "constant", weight_value=0.7,
                              fan_in_scaled=True)
    params = [{"W": p["W"], "b": jnp.full_like(p["b"], 0.2)} for p in params]
    x = jnp.asarray(rng.standard_normal((n, d)))
    y = jnp.asarray(rng.standard_normal((n, 1)))
    restricted, leak = splitting.antisymmetric_hessian(params, x, y, "tanh", "mse")
    assert leak <= 1e-10
    # symmetric dimensions: first layer's row and bias (d + 1), each further hidden layer's
    # constant W and bias (2), the output layer's column and bias (2 n_out, n_out = 1)
    n_sym = d + 1 + 2 * (hidden - 1) + 2
    assert restricted.shape[0] == ravel_pytree(params)[0].size - n_sym
    if hidden == 1:
        block = splitting.antisymmetric_block(params, x, y, "tanh", "mse")
        np.testing.assert_allclose(np.linalg.eigvalsh(restricted),
                                   np.sort(np.repeat(block.eigenvalues, m - 1)),
                                   rtol=1e-8, atol=1e-10)
    # and it does leak at a non-symmetric point (the check can fail)
    params[0]["b"] = params[0]["b"].at[0].add(0.5)
    assert splitting.antisymmetric_hessian(params, x, y, "tanh", "mse")[1] > 1e-4
