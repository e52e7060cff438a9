"""``jax.grad`` of every activation x loss equals the NumPy backprop oracle to 1e-10 relative
(to ~eps |z| where huge logits z make the rounding larger)."""

import itertools
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from helpers import assert_trees_all_close
from jaxsym.core import nn
from jaxsym.core.spec import LOSSES
from jaxsym.theory import backprop

ACTIVATIONS = nn.activation_names()
INIT_KINDS = ("random", "zeros", "constant", "biases_only")

RTOL = 1e-10
#: the gradients' rounding relative to their scale, in units of eps * max |logit| (see
#: _assert_jax_matches_oracle; measured 0.26)
GRAD_ROUNDING = 16


def _loss_of_params(params, x, y, activation, loss):
    return nn.loss_fn(loss)(nn.apply(params, x, activation), y)


# For ever-new shapes (hypothesis) one XLA compile of the whole value_and_grad is cheaper than
# eager dispatch, which compiles every primitive for every new shape: per example ~1-5 s eager,
# ~0.6 s jitted, ~0.3 s jitted with LLVM optimisation off (measured on 2 CPU cores).
_jitted_value_and_grad = jax.jit(
    jax.value_and_grad(_loss_of_params), static_argnums=(3, 4),
    compiler_options={"xla_backend_optimization_level": 0})


def _params(rng, sizes, init_kind, gain=1.0):
    """Float64 MLP of layer ``sizes`` under one init kind.

    random: W ~ N(0, gain^2 / n_in), b ~ N(0, 1); zeros: W = b = 0; constant: one value c
    everywhere (W and b); biases_only: W = 0, b ~ N(0, 1).
    """
    c = gain * rng.randn()
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        if init_kind == "random":
            W, b = gain * rng.randn(n_out, n_in) / np.sqrt(n_in), rng.randn(n_out)
        elif init_kind == "zeros":
            W, b = np.zeros((n_out, n_in)), np.zeros(n_out)
        elif init_kind == "constant":
            W, b = np.full((n_out, n_in), c), np.full(n_out, c)
        else:
            W, b = np.zeros((n_out, n_in)), rng.randn(n_out)
        params.append({"W": W, "b": b})
    return params


def _targets(rng, loss, batch, n_out):
    if loss == "mse":
        return rng.randn(batch, n_out)
    if loss == "bce":
        return (rng.rand(batch, n_out) < 0.5).astype(np.float64)
    return rng.randint(0, n_out, size=batch)


def _jax_loss_and_grads(params, x, y, activation, loss, jit):
    """``jax.value_and_grad`` of ``p -> loss(apply(p, x), y)``, eager or jitted."""
    params, x, y = jax.tree.map(jnp.asarray, (params, x, y))
    if jit:
        value, grads = _jitted_value_and_grad(params, x, y, activation, loss)
    else:
        value, grads = jax.value_and_grad(_loss_of_params)(params, x, y, activation, loss)
    return float(value), grads


def _assert_jax_matches_oracle(params, x, y, activation, loss, jit=False):
    """Gradients agree per leaf to RTOL with atol = max(RTOL, GRAD_ROUNDING * eps * max |logit|)
    * max |oracle gradient|; losses to RTOL.

    The loss gets atol = RTOL * max |logit| too: the cross-entropies subtract logits
    (``logsumexp(z) - z_label``), so their rounding error is ~eps |z|, which is far above
    eps |L| when huge equal logits (deep all-constant inits reach |z| ~ 1e11) give L = log n_out.
    The same rounding enters the output error ``softmax(z) - y`` that every gradient carries, so
    the gradients' error relative to their scale is ~eps |z| too (measured: 0.26 eps |z| at
    |z| = 2.7e6, a linear all-constant network that hypothesis found): above RTOL once |z|
    passes ~1e5, and RTOL decides below that.
    """
    oracle_value, oracle_grads = backprop.gradients(params, x, y, activation, loss)
    jax_value, jax_grads = _jax_loss_and_grads(params, x, y, activation, loss, jit)
    zs, _ = backprop.forward(params, x, activation)
    logit_scale = np.max(np.abs(zs[-1]))
    np.testing.assert_allclose(jax_value, oracle_value, rtol=RTOL,
                               atol=max(RTOL * logit_scale, 1e-300))
    scale = max(np.max(np.abs(leaf)) for leaf in jax.tree.leaves(oracle_grads))
    relative = max(RTOL, GRAD_ROUNDING * np.finfo(np.float64).eps * logit_scale)
    assert_trees_all_close(jax_grads, oracle_grads, rtol=RTOL,
                           atol=max(relative * scale, 1e-300), err_msg=f"{activation}/{loss}")


@st.composite
def networks(draw):
    depth = draw(st.integers(1, 6))
    sizes = tuple(draw(st.lists(st.integers(1, 32), min_size=depth + 1, max_size=depth + 1)))
    return dict(
        sizes=sizes,
        batch=draw(st.integers(1, 64)),
        activation=draw(st.sampled_from(ACTIVATIONS)),
        loss=draw(st.sampled_from(LOSSES)),
        init_kind=draw(st.sampled_from(INIT_KINDS)),
        gain=draw(st.sampled_from([0.5, 1.0, 2.0])),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


@settings(max_examples=30, deadline=None)
@given(networks())
@example({"sizes": (1, 1, 1, 13, 5, 12, 3), "batch": 1, "activation": "linear",
          "loss": "softmax_ce", "init_kind": "constant", "gain": 2.0, "seed": 0})
def test_jax_grad_equals_oracle(case):
    rng = np.random.RandomState(case["seed"])
    sizes, batch, loss = case["sizes"], case["batch"], case["loss"]
    params = _params(rng, sizes, case["init_kind"], case["gain"])
    x = rng.randn(batch, sizes[0])
    y = _targets(rng, loss, batch, sizes[-1])
    _assert_jax_matches_oracle(params, x, y, case["activation"], loss, jit=True)


@pytest.mark.parametrize("init_kind", INIT_KINDS)
@pytest.mark.parametrize("activation,loss", list(itertools.product(ACTIVATIONS, LOSSES)))
def test_every_activation_and_loss(activation, loss, init_kind):
    rng = np.random.RandomState(zlib.crc32(f"{activation}/{loss}/{init_kind}".encode()))
    sizes, batch = (5, 7, 6, 4), 9
    params = _params(rng, sizes, init_kind)
    x = rng.randn(batch, sizes[0])
    y = _targets(rng, loss, batch, sizes[-1])
    _assert_jax_matches_oracle(params, x, y, activation, loss)


LARGE_LOGITS = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [1e4, 1e4, -1e4]])


@pytest.mark.parametrize("loss", LOSSES)
def test_losses_stable_at_huge_logits(loss):
    rng = np.random.RandomState(0)
    y = _targets(rng, loss, *LARGE_LOGITS.shape)
    oracle_value, oracle_dz = backprop.output_delta(loss, LARGE_LOGITS, y)
    jax_value, jax_dz = jax.value_and_grad(nn.loss_fn(loss))(jnp.asarray(LARGE_LOGITS),
                                                             jnp.asarray(y))
    assert np.isfinite(oracle_value) and np.all(np.isfinite(oracle_dz))
    assert np.isfinite(float(jax_value)) and np.all(np.isfinite(np.asarray(jax_dz)))
    np.testing.assert_allclose(float(jax_value), oracle_value, rtol=RTOL)
    np.testing.assert_allclose(np.asarray(jax_dz), oracle_dz, rtol=RTOL, atol=1e-300)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_gradients_stable_at_huge_logits(activation, loss):
    """A network whose output layer gives logits of order +-1e4: oracle finite, equal to JAX."""
    rng = np.random.RandomState(1)
    params = _params(rng, (3, 4, 3), "random")
    params[-1]["W"] *= 1e4
    x = rng.randn(6, 3)
    y = _targets(rng, loss, 6, 3)
    oracle_value, oracle_grads = backprop.gradients(params, x, y, activation, loss)
    assert np.isfinite(oracle_value)
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(oracle_grads))
    _assert_jax_matches_oracle(params, x, y, activation, loss)


def test_output_delta_exact_at_huge_logits():
    """Hand-checkable values: no overflow, no 0 * inf, no catastrophic cancellation."""
    value, dz = backprop.output_delta("softmax_ce", [[1e4, -1e4, 0.0]], [1])
    assert value == 2e4 and np.array_equal(dz, [[1.0, -1.0, 0.0]])
    value, dz = backprop.output_delta("bce", [[1e4, -1e4, 1e4, -1e4]], [[1.0, 0.0, 0.0, 1.0]])
    assert value == 5e3 and np.array_equal(dz, [[0.0, 0.0, 0.25, -0.25]])
