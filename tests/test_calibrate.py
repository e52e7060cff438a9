"""The calibration's analysis on synthetic results: the learning rate is chosen on the
validation split (never the test set), targets are Glorot's per data draw, verdicts and cost
factors follow their definitions, and the registry pairs each run with its baselines."""

import json

import numpy as np
import pytest
import xarray as xr

from jaxsym.analysis import calibrate
from jaxsym.study import experiments

STEPS = np.array([0, 10, 100, 1000])
DRAWS, SEEDS = 3, 2


def _dataset(modes, values, sigmas, score, val, optimizer="adam", loss="softmax_ce"):
    """A result with the calibration's dims; ``score(mode, c, sigma, lr, seed) -> final test
    accuracy`` (the curve rises linearly in log-step to it), ``val`` the same for validation."""
    lrs = np.array([0.01, 0.1])
    shape = (1, len(modes), len(values), len(sigmas), len(lrs), DRAWS * SEEDS)
    test = np.empty(shape)
    valid = np.empty(shape)
    for idx in np.ndindex(shape):
        _, m, c, s, lr, seed = idx
        test[idx] = score(modes[m], values[c], sigmas[s], lrs[lr], seed)
        valid[idx] = val(modes[m], values[c], sigmas[s], lrs[lr], seed)
    ramp = np.array([0.1, 0.4, 0.8, 1.0])
    dims = ("activation", "weight_mode", "weight_value", "sigma_b", "learning_rate", "seed")
    coords = {"activation": ["tanh"], "weight_mode": list(modes), "weight_value": values,
              "sigma_b": sigmas, "learning_rate": lrs, "seed": np.arange(DRAWS * SEEDS),
              "step": STEPS, "layer": [1]}
    curve = test[..., None] * ramp
    study = {"sections": {"task": {"name": "digits", "draws": DRAWS},
                          "train": {"optimizer": optimizer, "loss": loss}}}
    return xr.Dataset(
        {"test_accuracy": (dims, test), "test_accuracy_curve": (dims + ("step",), curve),
         "val_accuracy": (dims + ("step",), valid[..., None] * ramp),
         "broken": (dims, test > 0.5), "functionally_broken": (dims, test > 0.5),
         "effective_rank": (dims + ("step", "layer"), np.ones(shape + (4, 1)))},
        coords=coords, attrs={"steps": 1000, "study": json.dumps(study), "name": "calibrate"})


def _baseline_score(mode, c, sigma, lr, seed):
    return 0.95 + 0.01 * (seed // SEEDS)  # Glorot per draw: 0.95, 0.96, 0.97


def _baseline_val(mode, c, sigma, lr, seed):
    return 0.9 if lr == 0.01 else 0.8


def test_learning_rate_is_tuned_on_validation_never_on_test():
    # lr 0.1 has the better TEST score everywhere, lr 0.01 the better validation score
    def score(mode, c, sigma, lr, seed):
        return 0.99 if lr == 0.1 else 0.5 + 0.4 * (sigma >= 0.1)

    def val(mode, c, sigma, lr, seed):
        return 0.9 if lr == 0.01 else 0.1

    const = _dataset(["constant"], [1.0], [1e-3, 0.1, 1.0], score, val)
    base = _dataset(list(calibrate.BASELINE_MODES), [1.0], [0.0], _baseline_score,
                    _baseline_val)
    out = calibrate.analyse([(const, None), (base, None)])
    (pair,) = out["pairs"]
    row = pair["rows"][0]
    cells = row["cells"]
    assert all(cell["learning_rate"] == 0.01 for cell in cells.values())
    assert cells[(1.0, 1e-3)]["test"].mean == pytest.approx(0.5)
    assert cells[(1.0, 0.1)]["test"].mean == pytest.approx(0.9)
    # per-draw targets: 0.98 x (0.95, 0.96, 0.97); 0.9 misses every one of them
    assert calibrate.targets(base.sel(weight_mode="glorot", activation="tanh").isel(
        weight_value=0, sigma_b=0, learning_rate=0), DRAWS, True) == pytest.approx(
        0.98 * np.array([0.95, 0.96, 0.97]))
    assert cells[(1.0, 0.1)]["p_success"] == 0.0
    assert row["recommendation"]["verdict"] == "no"  # 0.9 with a zero-width CI < 0.941
    assert row["fits"][1.0].status == "never"
    assert row["baselines"]["glorot"]["p_success"] == 1.0


def test_success_cost_and_sigma_90():
    """Constant W at sigma_b >= 0.1 matches Glorot exactly (same curves): success, cost 1."""
    def score(mode, c, sigma, lr, seed):
        return _baseline_score(mode, c, sigma, lr, seed) if sigma >= 0.1 else 0.3

    def val(mode, c, sigma, lr, seed):
        return score(mode, c, sigma, lr, seed) - 0.1 * (lr == 0.1) - 0.01 * (c == 0.5)

    const = _dataset(["constant"], [0.5, 1.0], [1e-3, 1e-2, 0.1, 1.0], score, val)
    base = _dataset(list(calibrate.BASELINE_MODES), [1.0], [0.0], _baseline_score,
                    _baseline_val)
    row = calibrate.analyse([(base, None), (const, None)])["pairs"][0]["rows"][0]
    good = row["cells"][(1.0, 1.0)]
    assert good["p_success"] == 1.0 and good["cost"].value == pytest.approx(1.0)
    assert row["cells"][(1.0, 1e-3)]["cost"].value == np.inf
    fit = row["fits"][1.0]
    assert fit.status == "fit" and 1e-2 <= fit.value <= 0.1 and fit.falls_above is None
    rec = row["recommendation"]
    assert rec["verdict"] == "yes" and rec["c"] == 1.0 and rec["sigma_b"] >= 0.1
    # near ties: c = 1 at sigma_b 0.1 and 1 have the same validation scores; c = 0.5 is 0.01
    # lower, below the lower end of the best cell's CI (0.96 - t_5 x 0.0089 / sqrt(6) = 0.9506)
    assert rec["near"] == [(1.0, 0.1), (1.0, 1.0)]
    from jaxsym.reporting import calibrate as render_calibrate

    assert "(1 near ties: c 1, sigma_b 0.1-1)" in render_calibrate._recommendation_table(
        [calibrate.analyse([(base, None), (const, None)])["pairs"][0]])


def test_runs_without_a_partner_are_listed_not_analysed():
    const = _dataset(["constant"], [1.0], [0.1], _baseline_score, _baseline_val, "sgd")
    out = calibrate.analyse([(const, None)])
    assert out["pairs"] == [] and out["missing"] == [("digits", "sgd", "softmax_ce")]


def test_registry_runs_every_task_and_optimizer_with_its_baselines():
    runs = [(name, overrides) for name, overrides, presets in experiments.STUDY_EXPERIMENTS
            if name.startswith("calibrate_") and "full" in presets]
    tasks = {name for name, _ in runs}
    assert tasks == {"calibrate_digits", "calibrate_mnist1d", "calibrate_spirals",
                     "calibrate_teacher"}
    for task in tasks:
        for optimizer, rates in experiments.CALIBRATE_LEARNING_RATES.items():
            mine = [o for n, o in runs if n == task and o["train.optimizer"] == optimizer
                    and "train.loss" not in o]
            if optimizer not in experiments.FULL_OPTIMIZERS:  # large preset only
                assert mine == []
                large = [o for n, o, presets in experiments.STUDY_EXPERIMENTS
                         if n == task and "large" in presets
                         and o.get("train.optimizer") == optimizer]
                assert len(large) == 2
                continue
            extra = 3 if optimizer in ("sgd", "adam") else 0  # W = 0, unit groups, dropout
            assert len(mine) == 2 + extra and all(o["grid.learning_rate"] == rates
                                                  for o in mine)
            kinds = [tuple(o.get("grid.weight_mode", ("constant",))) for o in mine]
            assert kinds.count(("zero",)) == kinds.count(("grouped",)) == extra // 3
            assert sum("grid.dropout" in o for o in mine) == extra // 3
            # the loss at a fixed task: constant W and the baselines again per other loss
            losses = [o for n, o in runs if n == task and o["train.optimizer"] == optimizer
                      and "train.loss" in o]
            if task == experiments.CALIBRATE_LOSS_TASK and extra:
                assert sorted(o["train.loss"] for o in losses) == sorted(
                    2 * list(experiments.CALIBRATE_LOSSES))
                assert sum("grid.weight_mode" in o for o in losses) == len(
                    experiments.CALIBRATE_LOSSES)
                # the full preset's constant-W loss runs keep c = 1 only (the large, every c)
                assert all(o["grid.weight_value"] == [1.0] for o in losses)
            else:
                assert losses == []
            (alternatives,) = [k for k in kinds if "glorot" in k]
            # with constant W + random b: >= 7 methods against each other
            assert set(calibrate.BASELINE_MODES) <= set(alternatives)
            assert len(alternatives) + 1 >= 7
            assert len(rates) >= 4


def test_alternatives_table_lists_every_baseline_mode(tmp_path):
    from jaxsym.reporting import calibrate as render_calibrate

    modes = list(calibrate.BASELINE_MODES) + ["orthogonal", "hadamard"]

    def score(mode, c, sigma, lr, seed):
        return 0.5 if mode == "hadamard" else _baseline_score(mode, c, sigma, lr, seed)

    const = _dataset(["constant"], [1.0], [1e-3, 0.1], _baseline_score, _baseline_val)
    base = _dataset(modes, [1.0], [0.0], score, _baseline_val)
    numbers = calibrate.analyse([(const, None), (base, None)])
    lines = "\n".join(render_calibrate.render(numbers, tmp_path))
    assert "### Is random W the only choice? The alternatives" in lines
    assert "Hadamard rows (ZerO-style)" in lines and "| 0.500 [0.500, 0.500] (0.00 / 0.00) |" in lines
    assert (tmp_path / "calibrate_digits_adam.png").is_file()
    # with only the three baselines there is no alternatives table
    three = calibrate.analyse([(const, None), (_dataset(list(calibrate.BASELINE_MODES), [1.0],
                                                          [0.0], score, _baseline_val), None)])
    assert "alternatives" not in "\n".join(render_calibrate.render(three, tmp_path))


def test_zero_weights_and_unit_groups_tables(tmp_path):
    """W = 0 + random b: the sigma_b of the best validation score and its verdict; unit
    groups: each k tuned and judged, 'groups needed' the smallest k whose verdict is yes."""
    from jaxsym.reporting import calibrate as render_calibrate

    def by_sigma(mode, c, sigma, lr, seed):
        return 0.3 if sigma < 0.1 else _baseline_score(mode, c, sigma, lr, seed)

    def val_by_sigma(mode, c, sigma, lr, seed):
        return 0.2 if sigma < 0.1 else _baseline_val(mode, c, sigma, lr, seed)

    modes = list(calibrate.BASELINE_MODES) + ["orthogonal"]
    const = _dataset(["constant"], [1.0], [1e-3, 0.1], _baseline_score, _baseline_val)
    base = _dataset(modes, [1.0], [0.0], _baseline_score, _baseline_val)
    zero = _dataset(["zero"], [1.0], [1e-3, 0.1], by_sigma, val_by_sigma)
    level = {1: 0.3, 2: 0.9, 4: 0.96, 8: 0.97}
    grouped = xr.concat([_dataset(["grouped"], [1.0], [0.0],
                                  lambda m, c, s, lr, seed, k=k: level[k], _baseline_val)
                         for k in level], dim="groups").assign_coords(groups=list(level))
    numbers = calibrate.analyse([(const, None), (base, None), (zero, None), (grouped, None)])
    row = numbers["pairs"][0]["rows"][0]
    assert row["zero"]["best"] == 0.1 and row["zero"]["verdict"] == "yes"
    assert row["zero"]["cells"][1e-3]["p_success"] == 0.0
    assert row["groups"]["verdicts"] == {1: "no", 2: "no", 4: "yes", 8: "yes"}
    assert row["groups"]["needed"] == 4
    text = "\n".join(render_calibrate.render(numbers, tmp_path))
    assert "### How many distinct units does training need?" in text
    assert "at sigma_b = 0.1: yes" in text and "| 4 |" in text
    assert "with 4 groups needed at the median" in text
    # without the extra runs (momentum, the quick preset) the rows say so
    bare = calibrate.analyse([(const, None), (base, None)])["pairs"][0]["rows"][0]
    assert bare["zero"] is None and bare["groups"] is None


def test_dropout_column_and_the_loss_table(tmp_path):
    """Dropout on identical units: the rate of the best validation score and its verdict in
    the alternatives table; the loss runs make their own pairs (not the recommendation's) and
    the loss table, where a verdict that differs between the losses is counted."""
    from jaxsym.reporting import answer
    from jaxsym.reporting import calibrate as render_calibrate

    modes = list(calibrate.BASELINE_MODES) + ["orthogonal"]
    const = _dataset(["constant"], [1.0], [1e-3, 0.1], _baseline_score, _baseline_val)
    base = _dataset(modes, [1.0], [0.0], _baseline_score, _baseline_val)
    level = {0.1: 0.5, 0.5: 0.96}
    dropped = xr.concat([_dataset(["constant"], [1.0], [0.0],
                                  lambda m, c, s, lr, seed, p=p: level[p],
                                  lambda m, c, s, lr, seed, p=p: level[p] - 0.05 * (lr == 0.1))
                         for p in level], dim="dropout").assign_coords(dropout=list(level))
    # with mse, constant W + random b falls clearly short of mse's Glorot
    mse_const = _dataset(["constant"], [1.0], [1e-3, 0.1], lambda *a: 0.5, _baseline_val,
                         loss="mse")
    mse_base = _dataset(list(calibrate.BASELINE_MODES), [1.0], [0.0], _baseline_score,
                        _baseline_val, loss="mse")
    numbers = calibrate.analyse([(const, None), (base, None), (dropped, None),
                                 (mse_const, None), (mse_base, None)])
    (pair,) = numbers["pairs"]
    (other,) = numbers["loss_pairs"]
    assert pair["loss"] == "softmax_ce" and other["loss"] == "mse"
    row = pair["rows"][0]
    assert row["dropout"]["best"] == 0.5 and row["dropout"]["verdict"] == "yes"
    assert row["dropout"]["cells"][0.1]["learning_rate"] == 0.01
    assert row["recommendation"]["verdict"] == "yes"
    assert other["rows"][0]["recommendation"]["verdict"] == "no"
    assert calibrate.loss_changes(numbers) == (1, 1)
    text = "\n".join(render_calibrate.render(numbers, tmp_path))
    assert "dropout on identical units (best p: verdict)" in text and "at p = 0.5: yes" in text
    assert "### Does it depend on the loss? The loss varied at a fixed task" in text
    assert "in 1 of 1 rows" in text
    assert "| digits | adam | tanh | " in text and ": no (" in text
    lines = answer.answer_lines({"calibrate": numbers})
    assert any("dropout alone 1 of 1" in line for line in lines)
    assert any("changed the verdict in 1 of 1 rows" in line for line in lines)
    assert answer.words(lines) <= answer.MAX_WORDS
    # the loss pairs never enter the recommendation table
    assert text.count("| digits | adam | tanh |") >= 2


def _c1_mse_runs():
    """A softmax_ce Glorot baseline and an mse pair whose constant-W run has c = 1 only and
    falls short of mse's Glorot."""
    base = _dataset(list(calibrate.BASELINE_MODES), [1.0], [0.0], _baseline_score,
                    _baseline_val)
    mse_const = _dataset(["constant"], [1.0], [1e-3, 0.1], lambda *a: 0.5, _baseline_val,
                         loss="mse")
    mse_base = _dataset(list(calibrate.BASELINE_MODES), [1.0], [0.0], _baseline_score,
                        _baseline_val, loss="mse")
    return base, mse_const, mse_base


def test_loss_table_compares_the_losses_on_the_same_constant_weights(tmp_path):
    """Where the other losses ran at fewer c than the own loss, the loss table re-analyses
    the own loss on those c only: a c that only the own loss tried cannot make a verdict
    'change with the loss'."""
    from jaxsym.reporting import calibrate as render_calibrate

    def score(mode, c, sigma, lr, seed):  # only c = 0.5 trains as well as Glorot
        return _baseline_score(mode, c, sigma, lr, seed) if c == 0.5 else 0.5

    def val(mode, c, sigma, lr, seed):
        return (0.95 if c == 0.5 else 0.5) - 0.05 * (lr == 0.1)

    const = _dataset(["constant"], [0.5, 1.0], [1e-3, 0.1], score, val)
    base, mse_const, mse_base = _c1_mse_runs()
    numbers = calibrate.analyse([(const, None), (base, None), (mse_const, None),
                                 (mse_base, None)])
    (pair,) = numbers["pairs"]
    (reference,) = numbers["loss_reference"]
    # the recommendation table keeps both c (c = 0.5 wins there) ...
    assert pair["weight_values"] == [0.5, 1.0]
    assert pair["rows"][0]["recommendation"]["verdict"] == "yes"
    # ... the loss table sees the own loss at c = 1 only, where it fails like mse
    assert reference["weight_values"] == [1.0] and reference["loss"] == "softmax_ce"
    assert reference["rows"][0]["recommendation"]["verdict"] == "no"
    assert calibrate.loss_changes(numbers) == (0, 1)
    text = "\n".join(render_calibrate.render(numbers, tmp_path))
    assert "same constant weights (c = 1;" in text and "in 0 of 1 rows" in text
    # with the same c everywhere there is nothing to re-analyse
    same = calibrate.analyse([(const.sel(weight_value=[1.0]), None), (base, None),
                              (mse_const, None), (mse_base, None)])
    assert same["loss_reference"] == [] and calibrate.loss_changes(same) == (0, 1)


def test_loss_table_says_when_no_constant_weight_is_shared(tmp_path):
    """With no c common to every loss there is no like-for-like reference, and the table
    names each loss's c instead of claiming the same constant weights."""
    from jaxsym.reporting import calibrate as render_calibrate

    const = _dataset(["constant"], [0.5], [1e-3, 0.1], _baseline_score, _baseline_val)
    base, mse_const, mse_base = _c1_mse_runs()
    numbers = calibrate.analyse([(const, None), (base, None), (mse_const, None),
                                 (mse_base, None)])
    assert numbers["loss_reference"] == []
    text = "\n".join(render_calibrate.render(numbers, tmp_path))
    assert "same constant weights" not in text
    assert "adam softmax_ce: c = 0.5; adam mse: c = 1" in text
