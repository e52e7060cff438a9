"""Signed splitting: where identical units heal, random signs of the output weights make random
biases break the symmetry (jaxsym.theory.splitting, "Groups of units").

The cell: xor (data draw 0), gelu, bce, 8 units, constant weights 1/sqrt(fan_in), lr 0.5,
float64 -- a cell the classification predicts (and the sweep measures) as "heals". With all
output weights positive the splitting matrix S at the end of the symmetric trajectory is
positive definite at the classification's budget (3000 steps) and at best slightly indefinite
much later, so random biases (sigma_b = 1e-4) never break it. With the signs of half the output
weights flipped, the units form two groups of identical units; the + group's S_G has a clearly
negative eigenvalue and random biases break that group.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsym.core import train
from jaxsym.study import tasks
from jaxsym.theory import splitting

#: one xdist worker runs this module, so its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group("test_signed_splitting")

M, LR, SIGMA_B, THRESHOLD = 8, 0.5, 1e-4, 1e-2
SIGNS = np.array([1.0, 1, 1, 1, -1, -1, -1, -1])


@pytest.fixture(scope="module")
def xor():
    task = tasks.make_task("xor", seed=0, n_train=256, n_test=64)
    return (jnp.asarray(task.x_train, jnp.float64),
            jnp.asarray(tasks.targets_for_loss(task, task.y_train, "bce"), jnp.float64))


def _params(signs, b, d):
    return [{"W": jnp.full((M, d), 1.0 / np.sqrt(d)), "b": b},
            {"W": jnp.asarray(signs[None, :] / np.sqrt(M)), "b": jnp.zeros(1)}]


def _train(params, x, y, steps):
    return train.train(params, x, y, activation="gelu", loss="bce", optimizer="sgd",
                       learning_rate=LR, steps=steps).params


def _group_diversity(W, group):
    s = np.linalg.svd(np.asarray(W)[group], compute_uv=False)
    return s[1] / s[0]


def _broken_fraction(signs, x, y, steps, group, n=6):
    """Fraction of n networks (biases N(0, SIGMA_B^2)) whose units in ``group`` break."""
    biases = SIGMA_B * jax.random.normal(jax.random.key(7), (n, M), jnp.float64)
    finals = jax.jit(jax.vmap(lambda b: _train(_params(signs, b, x.shape[1]), x, y, steps)[0]["W"]
                              ))(biases)
    return np.mean([_group_diversity(W, group) > THRESHOLD for W in finals])


def test_signed_output_weights_break_where_identical_units_heal(xor):
    x, y = xor
    d = x.shape[1]
    # unsigned: S positive definite at the classification's budget (heals) ...
    end = _train(_params(np.ones(M), jnp.zeros(M), d), x, y, 3000)
    unsigned = splitting.antisymmetric_block(end, x, y, "gelu", "bce")
    assert unsigned.splitting_min > 0
    # ... and only slightly indefinite much later: no unsigned network breaks by step 8000
    late = splitting.antisymmetric_block(_train(_params(np.ones(M), jnp.zeros(M), d), x, y, 8000),
                                         x, y, "gelu", "bce")
    assert _broken_fraction(np.ones(M), x, y, 8000, np.arange(M)) == 0.0
    # signed: two groups of identical units (the symmetric signed trajectory keeps them so)
    signed_end = _train(_params(SIGNS, jnp.zeros(M), d), x, y, 8000)
    plus, minus = SIGNS > 0, SIGNS < 0
    assert splitting.is_symmetric_layer(signed_end, units=plus)
    assert splitting.is_symmetric_layer(signed_end, units=minus)
    block = splitting.antisymmetric_block(signed_end, x, y, "gelu", "bce", units=plus)
    assert block.width == 4
    # the + group sits at a saddle many times steeper than anything the unsigned units see
    assert block.splitting_min < 5 * min(late.splitting_min, 0.0) - 1e-4
    # and random biases break it: every network's + group
    assert _broken_fraction(SIGNS, x, y, 8000, plus) == 1.0
    # the group's S_G is the plain S of that group: a group of all units reproduces the block
    whole = splitting.antisymmetric_block(end, x, y, "gelu", "bce", units=np.arange(M))
    np.testing.assert_allclose(whole.S, unsigned.S, rtol=0, atol=0)
