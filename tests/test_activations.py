"""Hand-written g', g'' against JAX autodiff; registry errors; the oracle stays JAX-free."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsym.core import nn
from jaxsym.core.activations import get_activation
from jaxsym.core.spec import LOSSES
from jaxsym.theory import backprop

ACTIVATIONS = nn.activation_names()

# 0 exactly, a fine grid over [-6, 6], points just off 0 (kinks), and far tails (saturation).
GRID = np.unique(np.concatenate([
    np.linspace(-6.0, 6.0, 241),
    [0.0, 1e-300, -1e-300, 1e-12, -1e-12, 1e-6, -1e-6],
    [-40.0, -20.0, -10.0, 10.0, 20.0, 40.0],
]))
TOL = dict(rtol=1e-12, atol=1e-12)


def _elementwise_grad(f):
    return jax.vmap(jax.grad(f))


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_numpy_g_equals_jax_g(name):
    expected = nn.activation_fn(name)(jnp.asarray(GRID))
    np.testing.assert_allclose(get_activation(name).g(GRID), np.asarray(expected), **TOL)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_hand_written_first_derivative_equals_jax_grad(name):
    expected = _elementwise_grad(nn.activation_fn(name))(jnp.asarray(GRID))
    np.testing.assert_allclose(get_activation(name).dg(GRID), np.asarray(expected), **TOL)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_hand_written_second_derivative_equals_jax_grad_grad(name):
    g = nn.activation_fn(name)
    expected = jax.vmap(jax.grad(jax.grad(g)))(jnp.asarray(GRID))
    np.testing.assert_allclose(get_activation(name).d2g(GRID), np.asarray(expected), **TOL)


def _assert_lists_all(exc_info, names):
    message = str(exc_info.value)
    assert all(name in message for name in names), message


def test_unknown_activation_lists_allowed_names():
    for lookup in (get_activation, nn.activation_fn):
        with pytest.raises(ValueError, match="unknown activation 'swish'") as exc_info:
            lookup("swish")
        _assert_lists_all(exc_info, ACTIVATIONS)


def test_unknown_loss_lists_allowed_names():
    with pytest.raises(ValueError, match="unknown loss 'hinge'") as exc_info:
        nn.loss_fn("hinge")
    _assert_lists_all(exc_info, LOSSES)
    with pytest.raises(ValueError, match="unknown loss 'hinge'") as exc_info:
        backprop.output_delta("hinge", np.zeros((2, 3)), np.zeros((2, 3)))
    _assert_lists_all(exc_info, LOSSES)


def test_oracle_does_not_import_jax():
    code = "import sys, jaxsym.theory.backprop; print('jax' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False", result.stdout + result.stderr
