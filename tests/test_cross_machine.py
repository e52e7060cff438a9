"""Same answer on every machine: a small bias-only study (relu and tanh, float32, width 17,
W constant, sigma_b in {0, 1e-12, 1e-8, 1e-4}) under the machine's own kernels with every
strategy (map with 1 and 8 networks per step, vmap), and under XLA's AVX2 kernels in a
subprocess (``jaxsym run``, as a user would): P(broken) is identical everywhere, exactly 0 at
sigma_b = 0 (where every checkpoint's unit spread is exactly 0.0), and the median times to
break and to converge agree within 1% wherever sigma_b is far above the dtype's rounding floor.

Bitwise equality of the non-symmetric arithmetic across kernels is not expected (vector widths
change rounding) and not asserted. So at sigma_b = 1e-8 in float32, where a bias difference is
at the resolution of the pre-activations (float32's unit roundoff is 6e-8; the biases are
absorbed in all but the samples with small |w.x|), the asymmetry that starts the escape is
itself made of rounding, and the time to break moves with the kernels (measured: median 249 vs
255 steps for relu, 191 vs 150 for tanh, map-8 vs map-1); P(broken) does not. In float64 the
same cell is 8 orders of magnitude above the floor and its times agree within 1%.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxsym.study import config
from jaxsym.core import exactness
from jaxsym.engine import store
from jaxsym.engine.run import run_study

#: one xdist worker runs this module, so its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group("test_cross_machine")

CONFIG = """
name = "cross_machine"
[task]
name = "teacher_student"
dim = 2
teacher_width = 2
n_train = 64
n_test = 32
[model]
depth = 2
width = 17
[train]
learning_rate = 0.2
steps = 1500
dtype = "{dtype}"
[init]
weight_mode = "constant"
weight_value = 1.0
fan_in_scaled = true
[grid]
activation = ["relu", "tanh"]
sigma_b = [0.0, 1e-12, 1e-8, 1e-4]
[seeds]
count = 8
[record]
checkpoints = 12
gradient_steps = 0
[thresholds]
diversity = 1e-2
loss = 1e-2
"""


#: smallest sigma_b whose times must agree across kernels, per dtype (see the module doc)
TIMED_FROM = {"float32": 1e-4, "float64": 1e-8}


@pytest.fixture(scope="module", params=["float32", "float64"])
def runs(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"cross_{request.param}")
    path = root / "study.toml"
    text = CONFIG.replace("{dtype}", request.param)
    path.write_text(text)
    study = config.parse_study(text)
    results = {}
    for name, strategy, batch in (("map-1", "map", 1), ("map-8", "map", 8),
                                  ("vmap", "vmap", None)):
        results[name] = run_study(study, root / name, strategy=strategy, map_batch=batch,
                                  progress=False)
    env = {**os.environ, "XLA_FLAGS": exactness.KERNEL_FAMILIES["xla-avx2"]}
    subprocess.run([sys.executable, "-m", "jaxsym", "run", str(path), "--out",
                    str(root / "avx2"), "--no-progress"], env=env, check=True,
                   capture_output=True, timeout=900)
    results["xla-avx2"] = store.load(root / "avx2")
    return results


def test_provenance_names_the_machine(runs):
    avx2 = runs["xla-avx2"].attrs
    assert avx2["xla_flags"].startswith(exactness.KERNEL_FAMILIES["xla-avx2"])
    assert json.loads(runs["map-8"].attrs["nets_per_map_step"]) == {"0": 8, "1": 8}
    assert json.loads(runs["map-1"].attrs["nets_per_map_step"]) == {"0": 1, "1": 1}
    for key in ("cpu_model", "cpu_isa", "device_kind", "jaxlib_version", "optax_version",
                "numpy_version"):
        assert avx2[key] and avx2[key] == runs["vmap"].attrs[key]
    assert json.loads(avx2["nets_per_map_step"]) == {"0": 8, "1": 8}  # the engine's choice


def test_identical_units_stay_identical_everywhere(runs):
    for name, ds in runs.items():
        at_zero = ds.sel(sigma_b=0.0)
        assert not at_zero["broken"].values.any(), name
        assert (at_zero["spread"].values == 0.0).all(), name


def test_same_answer_on_every_kernel_and_strategy(runs):
    reference = runs["map-1"]
    p_ref = reference["broken"].mean("seed").values
    # the answer is not trivial: some grid points break, some do not
    assert 0 < p_ref.mean() < 1, p_ref
    for name, ds in runs.items():
        np.testing.assert_array_equal(ds["broken"].mean("seed").values, p_ref, err_msg=name)
        timed = {"sigma_b": [s for s in ds["sigma_b"].values
                             if s >= TIMED_FROM[ds.attrs["dtype"]] or s == 0.0]}
        # a relu network's convergence can move by a few percent with rounding (one unit
        # crossing its kink a step earlier), e.g. 833 vs 887 steps in one of 12 seeds, which
        # moves the median of 12 by ~1%: 2% for convergence, 1% for breaking
        for var, rtol in (("time_to_break", 0.01), ("time_to_converge", 0.02)):
            np.testing.assert_allclose(ds[var].sel(timed).median("seed").values,
                                       reference[var].sel(timed).median("seed").values,
                                       rtol=rtol, err_msg=f"{name}: {var}")


def test_the_calibration_comparison_flags_a_changed_verdict_and_a_recipe_cell_outside_ties():
    """benchmarks/cross_machine.py's calibration comparison: the same runs twice agree on every
    conclusion; a baseline whose test score falls below the target changes its verdict, and a
    recipe cell the reference's validation split could tell apart is flagged."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
    import cross_machine
    from tests.test_calibrate import _baseline_score, _baseline_val, _dataset

    def const_score(mode, c, sigma, lr, seed):
        return 0.97 if sigma >= 0.1 else 0.5

    def const_val(mode, c, sigma, lr, seed):  # sigma_b = 1 clearly best on validation
        return {1e-3: 0.5, 0.1: 0.8, 1.0: 0.9}[sigma] - (lr == 0.1) * 0.1

    sigmas = [1e-3, 0.1, 1.0]
    modes = ["glorot", "torch_default"]
    reference = [(_dataset(["constant"], [1.0], sigmas, const_score, const_val), None),
                 (_dataset(modes, [1.0], [0.0], _baseline_score, _baseline_val), None)]
    same = cross_machine.calibration_rows(reference, reference)
    assert same and all(r["same"] for r in same)
    assert {"tanh recommendation verdict", "tanh baseline torch_default",
            "tanh recipe cell among the reference's near ties"} <= {r["what"] for r in same}

    def worse(mode, c, sigma, lr, seed):
        return 0.5 if mode == "torch_default" else _baseline_score(mode, c, sigma, lr, seed)

    def other_val(mode, c, sigma, lr, seed):  # now sigma_b = 0.1 wins on validation
        return {1e-3: 0.5, 0.1: 0.95, 1.0: 0.9}[sigma] - (lr == 0.1) * 0.1

    other = [(_dataset(["constant"], [1.0], sigmas, const_score, other_val), None),
             (_dataset(modes, [1.0], [0.0], worse, _baseline_val), None)]
    differ = {r["what"] for r in cross_machine.calibration_rows(reference, other)
              if not r["same"]}
    assert differ == {"tanh baseline torch_default",
                      "tanh recipe cell among the reference's near ties"}


def test_the_report_comparison_reads_verdicts_recipes_and_sigma_90_from_the_tables():
    """benchmarks/cross_report.py compares a machine's rendered calibration tables with the
    committed report's text: equal tables agree everywhere; a changed verdict, a recipe outside
    the near ties, a sigma_90 outside the committed CI and a changed group count are flagged,
    and a test score outside the committed CI is counted, not flagged."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
    import cross_report

    head = ("| task | optimizer | activation | constant-W recipe (c, sigma_b, lr) | "
            "test score [95% CI] | sigma_90 at that c | as well as Glorot? |\n|---|---|---|---|"
            "---|---|---|\n")
    groups = "| task | optimizer | activation | k = 1 | groups needed |\n|---|---|---|---|---|\n"

    def report(recipe, score, sigma, verdict, group, needed):
        return (f"text\n\n{head}| digits | sgd | relu | {recipe} | {score} | {sigma} | "
                f"{verdict} |\n\n{groups}| digits | sgd | relu | {group} | {needed} |\n")

    committed = report("c = 0.5, sigma_b = 0.1, lr = 1 (3 near ties: c 0.25-1, sigma_b "
                       "0.01-2)", "0.970 [0.960, 0.980]", "0.08 [0.0014, 0.1]; P < 0.9 again "
                       "at 8", "yes", "0.64 [0.62, 0.66] no", "> 16")
    rows, scores = cross_report.compare_rows(cross_report.table_rows(committed),
                                             cross_report.table_rows(committed))
    assert rows and all(r["same"] for r in rows) and scores == {"inside": 2, "scores": 2}
    assert {r["run"] for r in rows} == {"digits/sgd, recommendation", "digits/sgd, unit groups"}
    moved = report("c = 2, sigma_b = 0.1, lr = 1", "0.950 [0.940, 0.960]",
                   "0.00011 [0.0001, 0.001]", "unclear", "0.70 [0.66, 0.74] ?", "16")
    rows, scores = cross_report.compare_rows(cross_report.table_rows(committed),
                                             cross_report.table_rows(moved))
    assert {r["what"] for r in rows if not r["same"]} == {
        "relu: constant-W recipe (c, sigma_b, lr): recipe inside the near ties",
        "relu: sigma_90 at that c", "relu: as well as Glorot?", "relu: k = 1",
        "relu: groups needed"}
    assert scores == {"inside": 0, "scores": 2}
    assert cross_report.sigma_agrees("never", "never")
    assert cross_report.sigma_agrees("<= 0.0001", "0.00078 [0.0001, 0.01]; P < 0.9 again at 2")
    assert not cross_report.sigma_agrees("<= 0.0001; P < 0.9 again at 0.01",
                                         "0.083 [0.00013, 0.1]")
    assert not cross_report.sigma_agrees("never", "<= 0.0001")
    assert cross_report.sigma_agrees("0.5 [0.1, 0.5]; P < 0.9 again at 2", "0.3 [0.1, 2]")
