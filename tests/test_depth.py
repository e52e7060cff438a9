"""Deep networks layer by layer: the leave-one-layer-symmetric prediction
(:mod:`jaxsym.theory.depth`) rests on a symmetry (the response to a bias deviation of the
averaged layer is ``d u^T`` for ANY ``d ⊥ 1``), predicts each network's per-layer step to break,
and the depth section reads its runs and states the issue's target with its distance."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsym.analysis import depth as depth_analysis
from jaxsym.analysis import stats
from jaxsym.core import train
from jaxsym.core.precision import float64_scope
from jaxsym.engine.run import run_study
from jaxsym.study import config
from jaxsym.theory import depth

#: one xdist worker runs this module, so its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group("test_depth")

STUDY = """
name = "depth_check"
[task]
name = "teacher_student"
dim = 2
teacher_width = 2
n_train = 64
n_test = 8
[model]
depth = 3
width = 7
[train]
learning_rate = 0.5
steps = 900
dtype = "float64"
[init]
weight_mode = "constant"
weight_value = 0.5
[grid]
activation = ["tanh", "gelu"]
sigma_b = [1e-4]
[seeds]
count = 4
[record]
checkpoints = 16
gradient_steps = 0
[report]
section = "depth"
"""


def _network(key, sizes=(2, 7, 5, 3, 1), value=0.4):
    """Constant weights, random biases in every layer (float64)."""
    keys = jax.random.split(key, len(sizes))
    return [{"W": jnp.full((n_out, n_in), value / math.sqrt(n_in), jnp.float64),
             "b": 0.1 * jax.random.normal(k, (n_out,), jnp.float64)}
            for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:])]


def test_average_layer_averages_one_layer_and_keeps_the_function_of_its_mean_unit():
    with float64_scope():
        params = _network(jax.random.key(0))
        params[1]["W"] = params[1]["W"] + 0.01 * jax.random.normal(jax.random.key(1),
                                                                   params[1]["W"].shape)
        q = depth.average_layer(params, 1)
        assert np.all(q[1]["W"] == q[1]["W"][0]) and np.all(q[1]["b"] == q[1]["b"][0])
        np.testing.assert_allclose(q[2]["W"], np.repeat(params[2]["W"].mean(1, keepdims=True),
                                                        5, axis=1), rtol=1e-15)
        for i in (0, 3):  # the other layers are untouched
            assert np.array_equal(q[i]["W"], params[i]["W"])
            assert np.array_equal(q[i]["b"], params[i]["b"])
        again = depth.average_layer(q, 1)  # a projection
        for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(q)):
            np.testing.assert_allclose(a, b, rtol=1e-15, atol=1e-17)
        # m copies of the mean unit with the summed outgoing weights: the same network as
        # one mean unit with the m-fold outgoing weight
        x = jax.random.normal(jax.random.key(2), (11, 2), jnp.float64)
        from jaxsym.core import nn
        one = [q[0], {"W": q[1]["W"][:1], "b": q[1]["b"][:1]},
               {"W": q[2]["W"][:, :1] * 5, "b": q[2]["b"]}, q[3]]
        np.testing.assert_allclose(nn.apply(q, x, "tanh", kernel="plain"),
                                   nn.apply(one, x, "tanh", kernel="plain"), rtol=1e-12)


def test_response_of_the_averaged_layer_is_d_u_for_any_deviation():
    """The module doc's equivariance: along the layer-symmetric trajectory a bias deviation
    ``d ⊥ 1`` of layer l moves W_l by ``d u_t^T`` with ONE ``u_t`` whatever ``d`` is, while
    every other layer keeps its own random biases."""
    with float64_scope():
        params = _network(jax.random.key(3))
        x = jax.random.normal(jax.random.key(4), (32, 2), jnp.float64)
        y = jnp.sin(x[:, :1])
        tx = train.make_optimizer("sgd", 0.3)
        step = train.update(tx, lambda q: train.loss_of_params(q, x, y, "gelu", "mse"))
        layer = 1
        state = (depth.average_layer(params, layer), tx.init(params))
        us = []
        for d in (jnp.array([1.0, -1.0, 0, 0, 0]), jnp.array([0.3, 0.5, -1.2, 0.9, -0.5])):
            tangent = jax.tree.map(jnp.zeros_like, state[0])
            tangent[layer]["b"] = d
            s = state
            for _ in range(6):
                zero = jax.tree.map(jnp.zeros_like, s[1])
                (new, _), (t_state, _) = jax.jvp(step, (s,), ((tangent, zero),))
                tangent = t_state[0]
                s = (depth.average_layer(new[0], layer), new[1])
            T = tangent[layer]["W"]
            u = d @ T / (d @ d)
            np.testing.assert_allclose(T, jnp.outer(d, u), rtol=1e-9, atol=1e-15)
            assert float(jnp.linalg.norm(u)) > 0
            us.append(u)
        np.testing.assert_allclose(us[0], us[1], rtol=1e-9)


def test_rank_one_projection_and_no_split_above_a_symmetric_layer():
    """R_l keeps a rank-one W_l as it is and makes any W_l rank one; and the directions-
    parallel prediction of an upper layer stays at s2/s1 = 0 (to rounding) while the layer
    below has identical units: its rows can only split through the layer below."""
    with float64_scope():
        params = _network(jax.random.key(5), sizes=(2, 7, 5, 1))
        q = depth.rank_one_layer(params, 1)
        np.testing.assert_allclose(q[1]["W"], params[1]["W"], rtol=1e-14)
        noisy = [dict(p) for p in params]
        noisy[1]["W"] = noisy[1]["W"] + jax.random.normal(jax.random.key(6), (5, 7))
        r = depth.rank_one_layer(noisy, 1)[1]["W"]
        s = np.linalg.svd(np.asarray(r), compute_uv=False)
        assert s[1] < 1e-12 * s[0]
        # layer 1 symmetric (equal biases), layer 2 with its own random biases
        params[0]["b"] = jnp.full_like(params[0]["b"], 0.05)
        batch = jax.tree.map(lambda a: a[None], params)
        x = jax.random.normal(jax.random.key(7), (32, 2), jnp.float64)
        y = jnp.sin(x[:, :1])
        ratios = depth.layer_ratios(batch, x, y, "gelu", "mse", "sgd", 0.5, 300)
        assert ratios.shape == (1, 2, 301)
        assert float(ratios[0, 1].max()) < 1e-10
        assert float(ratios[0, 0].max()) < 1e-10  # layer 1's units are identical too


def test_break_times_from_amplitudes():
    log_a = np.log(np.array([[[5.0, 3.0, 4.0, 1.0, 0.5]], [[np.inf] * 5]]))  # (2, 1, 5)
    times = depth.layer_break_times(log_a, np.array([[3.5], [1e9]]))
    assert times[0, 0] == 1.0 and math.isinf(times[1, 0])
    # a > a*_t strictly, and the running minimum: 3.0 is not < 3.0 until step 3
    assert depth.layer_break_times(log_a[:1], np.array([[3.0]]))[0, 0] == 3.0


def test_agreement_and_first_crossing():
    m = stats.median_time(np.array([100.0, 110, 120]), np.array([True] * 3))
    p = stats.median_time(np.array([104.0, 114, 124]), np.array([True] * 3))
    never = stats.median_time(np.array([900.0] * 3), np.array([False] * 3))
    assert depth_analysis.agreement(p, m) == (True, pytest.approx(4 / 110))
    assert depth_analysis.agreement(never, never) == (True, 0.0)
    assert depth_analysis.agreement(never, m) == (False, math.inf)
    far = stats.median_time(np.array([200.0] * 3), np.array([True] * 3))
    assert not depth_analysis.agreement(far, m)[0]
    steps, crossed = depth_analysis.first_crossing(
        np.array([[0.0, 0.02, 0.5], [0.0, 0.0, 0.001]]), np.array([0, 10, 20]), 1e-2)
    assert steps.tolist() == [10.0, 20.0] and crossed.tolist() == [True, False]


def test_layer_escapes_refuses_what_it_cannot_predict():
    study = config.parse_study(STUDY.replace("[grid]", "[grid]\nweight_mode = [\"glorot\"]"))
    with pytest.raises(ValueError, match="constant or zero"):
        depth.layer_escapes(study)
    minibatch = config.parse_study(STUDY.replace("dtype = \"float64\"",
                                                 "dtype = \"float64\"\nbatch_size = 16"))
    with pytest.raises(ValueError, match="full-batch"):
        depth.layer_escapes(minibatch)


@pytest.fixture(scope="module")
def depth_run(tmp_path_factory):
    study = config.parse_study(STUDY)
    run_dir = tmp_path_factory.mktemp("depth") / "run"
    return run_dir, run_study(study, run_dir, progress=False)


def test_each_layer_breaks_when_its_network_predicts(depth_run, tmp_path):
    """Width 7 (odd), depth 3: every network's layer-1 break within 2 steps or 2% of its own
    prediction; a layer predicted never to break does not, and the other way round; the
    predicted medians within 5%; the section and its figure are written."""
    from jaxsym import reporting
    from jaxsym.analysis import sections

    run_dir, ds = depth_run
    numbers = dict(sections.analyse(sections.load([run_dir])))["depth"]
    (run,) = numbers["runs"]
    assert run["depth"] == 3
    for point in run["points"]:
        first, second = point["layers"]
        for prediction in (first, first["symmetric"]):
            assert prediction["networks_close"] == first["n"] == 4, point
        assert (second["k_predicted"] == 0) == (second["k"] == 0), point
        assert (second["symmetric"]["k"] == 0) == (second["k"] == 0), point
        assert first["ok"] and second["ok"] and second["symmetric"]["ok"], point
    assert numbers["target"]["total"] == 4 and numbers["target"]["reached"]
    report = reporting.write_report([run_dir], tmp_path).read_text()
    assert "## Deep networks, layer by layer" in report
    assert "4 of 4 (100%), met" in report
    assert (tmp_path / "depth.png").exists()
    # the answer's sentence comes from the same numbers: the one depth-3 run, sigma_b 1e-4
    assert ("**Does it work in deep networks?** Layer by layer, from the input up: with "
            "constant W and random b in every layer the median depth-3 network broke tanh "
            f"{int(run['points'][0]['layers'][1]['measured'].reached) + 1}, gelu 2 of its 2 "
            "hidden layers within 900 steps at sigma_b = 1e-04, each layer's median step "
            "predicted within 5% at 4 of 4 points at depths 3 and 4") in report


def test_the_cross_machine_comparison_checks_every_layer_of_every_network(depth_run,
                                                                          tmp_path):
    """benchmarks/cross_machine.py on a depth run: the same run twice agrees at every (grid
    point, layer); one network's layer-1 break moved by 5% is flagged there only."""
    import os
    import shutil
    import sys

    import xarray as xr

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
    import cross_machine

    run_dir, ds = depth_run
    ref, other = tmp_path / "ref", tmp_path / "other"
    for root in (ref, other):
        (root / "depth-x").mkdir(parents=True)
        shutil.copy(run_dir / "results.nc", root / "depth-x" / "results.nc")
    same = cross_machine.compare(ref, other, ["depth-x"])
    assert len(same) == 4 and all(r["same"] for r in same)  # 2 points x 2 layers
    moved = ds.load().copy(deep=True)
    t = moved.time_to_break_layer.values.copy()
    assert bool(moved.broken_layer.values[0, 0, 0, 0])
    t[0, 0, 0, 0] = int(t[0, 0, 0, 0] * 1.05) + 3
    moved["time_to_break_layer"] = (moved.time_to_break_layer.dims, t)
    moved.to_netcdf(other / "depth-x" / "results.nc")
    xr.backends.file_manager.FILE_CACHE.clear()
    differ = [r for r in cross_machine.compare(ref, other, ["depth-x"]) if not r["same"]]
    assert len(differ) == 1 and "layer 1" in differ[0]["what"]
