"""L2 weight decay as a traced knob: the decayed step, its neutrality when off, exact symmetry
with it on, the decayed antisymmetric block against jax.hessian, and its prediction."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import xor_network, xor_spec
from jax.flatten_util import ravel_pytree

from jaxsym.core import train
from jaxsym.engine.store import study_identity
from jaxsym.study import config, tasks
from jaxsym.theory import saddle, splitting
from jaxsym.engine.runner import task_data


def _params(rng, d=3, m=4):
    def normal(*shape):
        return jnp.asarray(rng.standard_normal(shape))

    return [{"W": normal(m, d), "b": normal(m)}, {"W": normal(1, m), "b": normal(1)}]


@pytest.mark.parametrize("kind", ["sgd", "momentum", "adam"])
def test_decayed_optimizer_is_l2_before_the_optimizer(kind):
    """update(grads + lambda p) of the plain optimizer, for every kind; None is the plain one."""
    rng = np.random.default_rng(0)
    params, grads = _params(rng), _params(rng)
    lam, lr = 0.03, 0.1
    decayed = train.make_optimizer(kind, lr, lam)
    plain = train.make_optimizer(kind, lr)
    shifted = jax.tree.map(lambda g, p: g + lam * p, grads, params)
    state, ref_state = decayed.init(params), plain.init(params)
    for _ in range(3):  # a few steps, so momentum and Adam state are exercised
        up, state = decayed.update(grads, state, params)
        ref, ref_state = plain.update(shifted, ref_state, params)
        for a, b in zip(jax.tree.leaves(up), jax.tree.leaves(ref)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    if kind == "sgd":
        up, _ = decayed.update(grads, decayed.init(params), params)
        np.testing.assert_allclose(up[0]["W"], -lr * (grads[0]["W"] + lam * params[0]["W"]),
                                   rtol=1e-12)


def _spec(decayed, batch_size=0, optimizer="sgd"):
    return xor_spec(steps=30, checkpoints=5, batch_size=batch_size, optimizer=optimizer,
                    decayed=decayed)


def _run(spec, sigma_b, weight_decay=None, seed=0):
    extra = {} if weight_decay is None else {"weight_decay": weight_decay}
    return xor_network(spec, sigma_b, seed, **extra)


def test_decay_off_is_the_plain_step_bit_for_bit():
    """Knob left out, and decay compiled in at lambda = 0 (g + 0 p = g exactly): every record
    bitwise equal; lambda > 0 changes the training."""
    plain = _run(_spec(False), 0.3)
    for other in (_run(_spec(True), 0.3, 0.0), _run(_spec(False), 0.3, 0.5)):
        for name in plain:
            np.testing.assert_array_equal(other[name], plain[name], err_msg=name)
    decayed = _run(_spec(True), 0.3, 0.05)
    assert not np.array_equal(decayed["loss"], plain["loss"])


@pytest.mark.parametrize("batch_size,optimizer", [(0, "sgd"), (16, "adam")])
def test_decay_keeps_identical_units_identical(batch_size, optimizer):
    """sigma_b = 0 at odd width 17 with decay: the trained rows stay bitwise equal, the
    functional diversity is exactly 0 at every checkpoint and nothing breaks."""
    out = _run(_spec(True, batch_size=batch_size, optimizer=optimizer), 0.0, 0.05)
    assert (out["functional_diversity"] == 0.0).all() and not out["broken"]
    task = tasks.make_task("xor", seed=1, n_train=64, n_test=32)
    data = task_data(task, "bce")
    params = [{"W": jnp.full((17, 2), 0.7), "b": jnp.full((17,), 0.2)},
              {"W": jnp.full((1, 17), 0.3), "b": jnp.zeros(1)}]
    final = train.train(params, data["x_train"], data["y_train"], activation="tanh",
                        loss="bce", optimizer=optimizer, learning_rate=0.3, steps=40,
                        batch_size=batch_size or None, key=jax.random.key(2),
                        weight_decay=0.05).params
    W, bias, V = (np.asarray(a) for a in (final[0]["W"], final[0]["b"], final[1]["W"]))
    assert (W == W[:1]).all() and (bias == bias[0]).all() and (V == V[:, :1]).all()
    assert not np.array_equal(W, np.asarray(params[0]["W"]))  # it trained


def _decayed_loss(unravel, x, y, activation, loss, lam):
    return lambda th: (train.loss_of_params(unravel(th), x, y, activation, loss)
                       + 0.5 * lam * th @ th)


@pytest.mark.parametrize("activation,lam", [("tanh", 0.02), ("gelu", 0.01), ("linear", 0.02)])
def test_decayed_block_and_its_schur_form_at_the_decayed_collapsed_point(activation, lam):
    """At the decayed collapsed point: the decayed Hessian restricted to the antisymmetric
    subspace has B + lambda I's spectrum (each eigenvalue m - 1 times); R = -(lambda / v) u;
    the sign of lambda_min(S + lambda (I - u u^T / v^2)) is B_lambda's. A positively
    homogeneous g (here linear: relu's kinks make gradient descent chatter) sits at a balanced
    point |u| = |v|, where S = 0 and the Schur form has a zero eigenvalue along u: B_lambda is
    singular there (decay gives the rescaling direction no curvature)."""
    rng = np.random.default_rng(1)
    d, m, n = 2, 3, 48
    x = jnp.asarray(rng.standard_normal((n, d)))
    y = jnp.asarray(np.sin(2 * np.asarray(x[:, :1])) + 0.1 * rng.standard_normal((n, 1)))
    start = [{"W": jnp.full((m, d), 0.6), "b": jnp.full((m,), 0.1)},
             {"W": jnp.full((1, m), 0.5), "b": jnp.zeros(1)}]
    point, _, grad = saddle.collapsed_point(start, x, y, activation, "mse", 0.2, 200_000,
                                            1e-11, weight_decay=lam)
    assert grad <= 1e-11
    block = splitting.antisymmetric_block(point, x, y, activation, "mse", weight_decay=lam)
    flat, unravel = ravel_pytree(point)
    H = np.asarray(jax.hessian(_decayed_loss(unravel, x, y, activation, "mse", lam))(flat))
    Q = splitting.antisymmetric_basis(point)
    restricted = np.linalg.eigvalsh(Q.T @ H @ Q)
    np.testing.assert_allclose(restricted, np.sort(np.repeat(block.eigenvalues, m - 1)),
                               rtol=1e-7, atol=1e-9)
    u = np.concatenate([np.asarray(point[0]["W"][0]), [float(point[0]["b"][0])]])
    v = float(point[1]["W"][0, 0])
    np.testing.assert_allclose(block.R[:, 0], -lam * u / v, rtol=1e-6, atol=1e-9)
    schur = np.linalg.eigvalsh(block.S + lam * (np.eye(d + 1) - np.outer(u, u) / v ** 2))[0]
    if activation == "linear":
        assert np.linalg.norm(u) == pytest.approx(abs(v), rel=1e-8)
        assert abs(schur) < 1e-9 and abs(block.lambda_min) < 1e-9
        assert block.eigenvalues[1] > 0.1 * lam
    else:
        assert np.sign(schur) == np.sign(block.lambda_min) and abs(schur) > 1e-6


def test_decay_enters_config_grid_and_identity():
    text = ('[task]\nname = "xor"\n[grid]\nweight_decay = [0.0, 0.01]\nsigma_b = [1e-4]\n')
    study = config.parse_study(text)
    assert dict(study.grid)["weight_decay"] == (0.0, 0.01)
    for bad, key in (("[train]\nweight_decay = -0.1\n", "train.weight_decay"),
                     ("[grid]\nweight_decay = [0.1, -1.0]\n", "weight_decay")):
        with pytest.raises(config.ConfigError, match=key):
            config.parse_study(bad)
    # off (0, the default) leaves a study's identity as it was before the knob existed
    base = config.parse_study('[task]\nname = "xor"\n')
    off = config.parse_study('[task]\nname = "xor"\n[train]\nweight_decay = 0.0\n')
    on = config.parse_study('[task]\nname = "xor"\n[train]\nweight_decay = 0.01\n')
    assert study_identity(off) == study_identity(base) != study_identity(on)
    assert "weight_decay" not in study_identity(base)


DECAY = """
name = "decay_check"
[task]
name = "circles"
n_train = 96
n_test = 32
[model]
depth = 2
width = 5
activation = "tanh"
[train]
loss = "mse"
optimizer = "sgd"
learning_rate = 0.5
steps = 1500
dtype = "float64"
[init]
weight_mode = "constant"
weight_value = 1.0
[grid]
weight_decay = [0.0, 0.1]
sigma_b = [1e-4]
[seeds]
count = 4
[record]
checkpoints = 3
gradient_steps = 0
[report]
section = "weight_decay"
"""


def test_decay_heals_where_the_theory_says_and_the_section_counts_it(tmp_path):
    """tanh on circles: without decay the collapsed point is a saddle and every network
    breaks; with lambda = 0.1 the decayed collapsed point (the origin) has B_lambda > 0, the
    linearised escape predicts healing and no network breaks. The section's per-draw count
    is the number of cells whose entries all agree."""
    from jaxsym.analysis import weight_decay as analysis_decay
    from jaxsym.engine.run import run_study
    from jaxsym.reporting import weight_decay as report_decay

    study = config.parse_study(DECAY)
    ds = run_study(study, tmp_path / "run", progress=False)
    broken = ds.broken_layer.isel(layer=0).values  # (weight_decay, sigma_b, seed)
    assert broken.shape[0] == 2 and broken[0].all() and not broken[1].any()
    numbers = analysis_decay.analyse([(ds, tmp_path / "run")])
    _, rows, ends, per_draw = numbers["tables"][0]
    by_decay = {r["cell"]["weight_decay"]: r for r in rows}
    assert by_decay[0.0]["prediction"].p_broken > 0.9
    assert by_decay[0.1]["prediction"].p_broken < 0.1
    assert all(r["agree"] for r in rows) and per_draw == {0: (2, 2)}
    assert ends[((("weight_decay", 0.1),), 0)]["lambda_min"] > 0
    assert ends[((("weight_decay", 0.0),), 0)]["lambda_min"] < 0
    text = "\n".join(report_decay.render(numbers, tmp_path))
    assert "B_lambda = B + lambda I" in text and "draw 0: **2 of 2**" in text
    # cached next to the run: a second analysis reads the predictions back unchanged
    again = analysis_decay.analyse([(ds, tmp_path / "run")])["tables"][0]
    assert repr(again[2]) == repr(ends)  # nan-aware: schur_min is nan without decay


def test_per_draw_agreement_counts_cells_not_entries():
    rows = [{"draw": 0, "cell": {"a": 1}, "agree": True}, {"draw": 0, "cell": {"a": 1},
                                                           "agree": False},
            {"draw": 0, "cell": {"a": 2}, "agree": True}, {"draw": 1, "cell": {"a": 1},
                                                           "agree": True}]
    from jaxsym.analysis.weight_decay import per_draw_agreement

    assert per_draw_agreement(rows) == {0: (1, 2), 1: (1, 1)}
