"""Theory-only classification of cells (jaxsym.theory.classify) and the norm mode of the
linearised escape, against the engine's networks."""

import numpy as np
import pytest

from jaxsym.study import config
from jaxsym.engine.run import run_study
from jaxsym.analysis import classify as analysis_classify
from jaxsym.theory import classify, predict

XOR = """
name = "classify_check"
[task]
name = "xor"
n_train = 256
n_test = 64
[model]
depth = 2
width = 8
activation = "tanh"
[train]
loss = "bce"
optimizer = "sgd"
learning_rate = 0.5
steps = 3000
dtype = "float64"
[init]
weight_mode = "constant"
weight_value = 1.0
[grid]
sigma_b = [1e-8]
[seeds]
count = 8
[record]
checkpoints = 3
gradient_steps = 0
"""


def test_piecewise_linear():
    assert all(classify.piecewise_linear(a) for a in ("relu", "leaky_relu", "linear"))
    assert not any(classify.piecewise_linear(a) for a in ("tanh", "elu", "gelu", "softplus"))


def test_kink_exposure_is_the_expected_number_of_sign_flips():
    """m sum_n Phi(-|z_n| / sigma) against a Monte Carlo count of (sample, unit) pairs whose
    pre-activation z_n + d_j has the other sign than z_n."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 2))
    w, m, sigma = np.array([0.7, -0.4]), 6, 0.05
    z = x @ w
    d = sigma * rng.standard_normal((4000, m))
    flips = (np.sign(z[None, :, None] + d[:, None, :]) != np.sign(z)[None, :, None]).sum(
        axis=(1, 2))
    expected = classify.kink_exposure(x, w, 0.0, sigma, m)
    assert expected == pytest.approx(flips.mean(), rel=0.03)
    assert classify.kink_exposure(x, w, 0.0, 0.0, m) == 0.0


def test_mechanism_labels():
    assert classify.mechanism("relu", 0.0, np.inf) == "kink"
    assert classify.mechanism("relu", 1.0, np.inf) == "transient"
    assert classify.mechanism("tanh", 1.0, 300.0) == "log-law"
    assert classify.mechanism("tanh", 1.0, np.inf) == "transient"
    assert classify.mechanism("tanh", 0.0, 300.0) == "slow"
    assert classify.mechanism("tanh", 0.0, np.inf) == "heals"
    assert classify.mechanism("tanh", 1.0, np.inf, p_first_order=0.0) == "norm"
    assert classify.mechanism("tanh", 1.0, 300.0, unstable=True) == "unstable"


def test_norm_mode_predicts_what_first_order_misses(tmp_path):
    """xor (data symmetric under swapping the inputs, like the constant initial weights),
    tanh, binary CE: the bias deviation grows along the rows (a* = inf, first order says
    P(broken) = 0) yet every network breaks; the norm-mode estimate predicts it, and the
    classification agrees with the sweep."""
    study = config.parse_study(XOR)
    predictions = predict.classify_study(study)
    (key, pred), = predictions.items()
    assert pred.mechanism == "norm" and pred.p_broken > 0.9
    ds = run_study(study, tmp_path / "run", progress=False)
    rows = analysis_classify.classification_rows(ds, predictions)
    assert rows[0]["p_measured"] == 1.0 and rows[0]["agree"]
    (_, escape_pred), = predict.escape_predictions(study).items()
    assert escape_pred.first_order().p_broken_by(1e-8) == 0.0  # first order alone misses it


def _teacher_relu():
    """The classify experiment's teacher-student cell with relu and mse (data draw 0)."""
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "experiments" / "classify.toml"
    return config.apply_overrides(config.load_study(path), {
        "task.name": "teacher_student", "task.draws": 1, "grid.activation": ["relu"],
        "grid.loss": ["mse"], "seeds.count": 8})


def test_kink_crossing_along_the_trajectory(tmp_path):
    """relu (g'' = 0: no first-order escape), teacher-student, mse. The kink margins at step 0
    are the pre-activations themselves (the exact sign-flip probability of some unit), and
    along the trajectory a crossing is necessary for a break: at sigma_b = 1e-8 no unit is
    likely to cross and no network breaks; at 1e-4 crossings are certain and the networks
    break, which the first-order escape alone does not predict."""
    from scipy import stats as sps

    study = _teacher_relu()
    (_, pred), = predict.escape_predictions(study).items()
    task = study.make_task(0)
    z = task.x_train @ np.full(task.dim, 1.0 / np.sqrt(task.dim))  # weights 1/sqrt(fan_in)
    tau_plus, tau_minus = -z[z < 0].max(), z[z > 0].min()
    m, sigma = 8, 1e-3
    s = sigma * np.sqrt(1 - 1 / m)
    p_unit = sps.norm.sf(tau_plus / s) + sps.norm.sf(tau_minus / s)
    assert pred.p_kink_by(sigma, t=0) == pytest.approx(1 - (1 - p_unit) ** m, rel=1e-9)
    assert pred.p_kink_by(0.0) == 0.0
    # monotone in time: crossings accumulate
    assert pred.p_kink_by(1e-6, t=10) <= pred.p_kink_by(1e-6, t=1000) <= pred.p_kink_by(1e-6)

    predictions = predict.classify_study(study)
    ds = run_study(study, tmp_path / "run", progress=False)
    rows = {r["sigma_b"]: r for r in analysis_classify.classification_rows(ds, predictions)}
    small, large = rows[1e-8], rows[1e-4]
    assert small["prediction"].kink_trajectory < 0.1 and small["p_measured"] == 0.0
    assert large["prediction"].kink_trajectory > 0.9 and large["p_measured"] >= 0.9
    assert large["prediction"].p_broken < 0.1  # the first-order escape misses it


BIAS_ONLY = """
name = "bias_only_check"
[task]
name = "teacher_student"
dim = 2
teacher_width = 2
n_train = 64
n_test = 16
[model]
width = 5
activation = "tanh"
[train]
learning_rate = 0.1
steps = 150
dtype = "float64"
[init]
weight_mode = "constant"
weight_value = 1.0
[grid]
weight_mode = ["constant", "zero", "glorot"]
activation = ["tanh", "relu"]
sigma_b = [0.0, 1e-3, 0.3]
[seeds]
count = 4
[record]
checkpoints = 3
gradient_steps = 0
[report]
section = "bias_only"
"""


def test_the_bias_only_tables_get_the_theory_of_their_constant_weight_cells(tmp_path):
    """theory.classify on a bias-only config: the prediction of each activation is that of
    the same config with constant weights only (the W = 0 cells of the weight_mode axis do
    not overwrite it), next to the measured P of the constant-W cells; minibatch configs get
    a reason instead."""
    from jaxsym.analysis import bias_only
    from jaxsym.reporting import bias_only as render_bias_only

    ds = run_study(config.parse_study(BIAS_ONLY), tmp_path / "run")
    rows = bias_only.theory_rows(ds, tmp_path / "run")
    assert (tmp_path / "run" / "predictions" / "classify_constant.json").is_file()
    constant_only = config.parse_study(BIAS_ONLY.replace(
        'weight_mode = ["constant", "zero", "glorot"]\n', ""))
    expected = predict.classify_study(constant_only)
    assert len(rows) == len(expected) == 2 * 3
    for r in rows:
        key = ((("activation", r["cell"]["activation"]),), r["draw"], r["sigma_b"])
        assert r["prediction"] == expected[key]
        one = ds.sel(weight_mode="constant", activation=r["cell"]["activation"],
                     sigma_b=r["sigma_b"])
        assert r["p_measured"] == pytest.approx(float(one.broken_layer.isel(layer=0).mean()))
    text = "\n".join(render_bias_only._theory(rows))
    assert f"of {2 * 2}** entries agree" in text and "| tanh |" in text and "| relu |" in text
    minibatch = ds.assign_attrs(config=BIAS_ONLY.replace("steps = 150", "steps = 150\n"
                                                         "batch_size = 16"))
    assert "minibatch" in bias_only.theory_rows(minibatch)
