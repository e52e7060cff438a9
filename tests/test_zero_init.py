"""W = 0 with random biases: the rank-one trap of positively homogeneous units, and why Adam
leaves it (jaxsym.theory.zero_init)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsym.core import metrics, train
from jaxsym.core.init import init_mlp
from jaxsym.engine import runner
from jaxsym.study import tasks
from jaxsym.theory import zero_init

#: one xdist worker runs this module, so its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group("test_zero_init")


@pytest.fixture(scope="module")
def circles():
    task = tasks.make_task("circles", seed=0, n_train=128, n_test=16)
    data = runner.task_data(task, "softmax_ce")
    return data["x_train"], data["y_train"]


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
@pytest.mark.parametrize("optimizer,lr,batch", [("sgd", 0.1, None), ("sgd", 0.1, 32),
                                                ("momentum", 0.02, 32), ("adam", 0.01, 32)])
def test_homogeneous_units_stay_multiples_of_one_unit_unless_adam(circles, activation,
                                                                  optimizer, lr, batch):
    """relu-type units, W = 0, b ~ N(0, 1): after the first updates every live unit of a hidden
    layer is a positive multiple of one unit (rows of [W | b] and the outgoing columns
    proportional), an invariant set of every optimizer linear in the gradient (SGD, momentum,
    full batch or minibatch): direction diversity stays at rounding level. Adam's
    per-coordinate normalisation is not homogeneous and leaves the set."""
    x, y = circles
    params = init_mlp(jax.random.key(1), (2, 8, 8, 2), "zero", sigma_b=1.0)
    out = train.train(params, x, y, activation=activation, loss="softmax_ce",
                      optimizer=optimizer, learning_rate=lr, steps=400, batch_size=batch,
                      key=jax.random.key(2)).params
    ratios = [float(metrics.rank_two_diversity(out[l]["W"])) for l in range(2)]
    spread = zero_init.proportionality_defect(out, layer=0)
    if optimizer == "adam":
        assert min(ratios) > 1e-2 and spread > 1e-2
    else:
        assert max(ratios) < 1e-5  # rank one up to rounding (sqrt of the unit roundoff)
        assert spread < 1e-10


def test_smooth_units_leave_the_trap_under_sgd(circles):
    """tanh has no homogeneity: under plain full-batch SGD the first layer's rows, parallel
    after the first update, diversify (slowly: g'' != 0 at the biases)."""
    x, y = circles
    params = init_mlp(jax.random.key(1), (2, 8, 1), "zero", sigma_b=1.0)
    y1 = jnp.asarray(2.0 * (np.asarray(y) == 1) - 1.0)[:, None]
    out = train.train(params, x, y1, activation="tanh", loss="mse", optimizer="sgd",
                      learning_rate=0.1, steps=500).params
    assert float(metrics.rank_two_diversity(out[0]["W"])) > 1e-3
    assert zero_init.proportionality_defect(out, layer=0) > 1e-3
