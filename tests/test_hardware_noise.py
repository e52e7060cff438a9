"""Hardware noise as a dose: the UNSAFE plain kernel computes the same maths as the exact one,
is selectable only by name, never changes a run that does not ask for it, and the
hardware-noise section reads its runs (twins that differ, replicas that differ, effective
sigma_b). Whether the plain kernel rounds one unit differently depends on the CPU's kernels,
so no test asserts that it does; the exact rows must hold everywhere and are asserted."""

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from helpers import assert_trees_all_close
from jaxsym.analysis import hardware_noise
from jaxsym.core import dense, nn, train
from jaxsym.core.init import init_mlp
from jaxsym.core.precision import float64_scope
from jaxsym.engine import store
from jaxsym.engine.run import run_study
from jaxsym.study import config, plan

#: one xdist worker runs this module, so its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group("test_hardware_noise")

ROOT = Path(__file__).resolve().parents[1]

STUDY = """
name = "hardware_check"
[task]
name = "teacher_student"
dim = 2
teacher_width = 2
n_train = 64
n_test = 8
draws = 2
[model]
depth = 2
width = 17
activation = "tanh"
[train]
steps = 400
dtype = "float32"
[init]
weight_mode = "constant"
sigma_b = 0.0
[grid]
kernel = ["exact", "plain"]
[seeds]
count = 2
[record]
checkpoints = 8
gradient_steps = 0
[report]
section = "hardware_noise"
"""


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_plain_kernel_computes_the_same_maths(optimizer):
    """Random (non-symmetric) params, float64: 25 steps of the plain step on the natural
    layout equal the exact step on the padded layout to 1e-12 (relative), at width 17 and
    depth 3; the plain step's params keep the natural shapes."""
    with float64_scope(True):
        sizes = (3, 17, 17, 1)
        params = init_mlp(jax.random.key(1), sizes, "normal", W_std=1.0, dtype="float64")
        params = [{"W": p["W"], "b": p["b"] + 0.1} for p in params]
        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.standard_normal((40, 3)))
        y = jnp.asarray(rng.standard_normal((40, 1)))
        finals = {}
        for kernel in ("exact", "plain"):
            tx, step = train.make_step(x, y, layer_sizes=sizes, activation="tanh", loss="mse",
                                       optimizer=optimizer, learning_rate=0.05, kernel=kernel)
            p = dense.pad_params(params) if kernel == "exact" else params
            state = tx.init(p)
            for t in range(25):
                _, _, p, state = step(p, state, jnp.int32(t))
            finals[kernel] = dense.unpad_params(p, sizes) if kernel == "exact" else p
        assert [q["W"].shape for q in finals["plain"]] == [(17, 3), (17, 17), (1, 17)]
        assert_trees_all_close(finals["plain"], finals["exact"], rtol=1e-12, atol=1e-14)
        moved = max(float(jnp.max(jnp.abs(a["W"] - b["W"])))
                    for a, b in zip(finals["exact"], params))
        assert moved > 1e-3  # the comparison is not between two untrained copies


def test_kernel_is_chosen_by_name_only():
    with pytest.raises(ValueError, match="unknown kernel 'fast'; allowed: exact, plain"):
        nn.product("fast")
    with pytest.raises(ValueError, match="unknown kernel"):
        train.make_step(jnp.zeros((4, 2)), jnp.zeros((4, 1)), layer_sizes=(2, 3, 1),
                        activation="tanh", loss="mse", optimizer="sgd", learning_rate=0.1,
                        kernel="fast")
    for text, key in ((STUDY.replace('kernel = ["exact", "plain"]', 'kernel = ["fast"]'),
                       "grid.kernel"),
                      (STUDY.replace("[grid]", '[grid]\nactivation = ["tanh"]').replace(
                          'kernel = ["exact", "plain"]', "").replace(
                          'dtype = "float32"', 'dtype = "float32"\nkernel = "fast"'),
                       "train.kernel")):
        with pytest.raises(config.ConfigError) as error:
            config.parse_study(text)
        message = str(error.value)
        assert key in message and "exact, plain" in message and "\n" not in message


def test_exact_kernel_is_a_neutral_setting():
    """A config that never names the kernel has the run identity it had before the kernel
    existed (old run directories resume); naming "exact" is the same run, "plain" another."""
    base = STUDY.replace('kernel = ["exact", "plain"]', 'activation = ["tanh"]')
    implicit = store.study_identity(config.parse_study(base))
    explicit = store.study_identity(config.parse_study(
        base.replace('dtype = "float32"', 'dtype = "float32"\nkernel = "exact"')))
    plain = store.study_identity(config.parse_study(
        base.replace('dtype = "float32"', 'dtype = "float32"\nkernel = "plain"')))
    assert implicit == explicit != plain
    assert "kernel" not in json.loads(implicit)["sections"]["train"]


def test_kernel_axis_splits_static_groups():
    study = config.parse_study(STUDY)
    groups = plan.plan_groups(study, study.make_task(0))
    assert [g.spec.kernel for g in groups] == ["exact", "plain"]
    assert groups[0].spec == dataclasses.replace(groups[1].spec, kernel="exact")


def _cell(spread, broken, times, final, steps=100, draws=None):
    """A synthetic hardware-noise cell over ``seed``."""
    spread = np.asarray(spread, np.float32)
    n, k = spread.shape[:2]
    ds = xr.Dataset(
        {"spread": (("seed", "step", "layer"), spread),
         "broken": ("seed", np.asarray(broken)),
         "time_to_break": ("seed", np.asarray(times, np.int32)),
         "final_loss": ("seed", np.asarray(final, np.float32))},
        coords={"seed": np.arange(n), "step": np.linspace(0, steps, k).astype(int),
                "draw": ("seed", np.zeros(n, int) if draws is None else np.asarray(draws))})
    ds.attrs.update({"steps": steps, "dtype": "float32"})
    return ds


def test_first_asymmetry_and_replicas_from_known_records():
    spread = np.zeros((4, 5, 1))
    spread[0, 2:, 0] = 1e-9   # twins differ from checkpoint 2 (step 50)
    spread[1, 4, 0] = 3e-7    # from the last one (step 100)
    cell = _cell(spread, [False, True, False, False], [100, 80, 100, 100],
                 [0.5, 0.25, 0.5, 0.5000001], draws=[0, 0, 1, 1])
    steps, seen = hardware_noise.first_asymmetry(cell)
    assert seen.tolist() == [True, True, False, False]
    assert steps.tolist() == [50, 100, 100, 100]
    # draw 0: the seeds break differently; draw 1: final losses differ in the last bits
    assert hardware_noise.replicas_differ(cell) == (2, 2)
    same = _cell(spread, [False] * 4, [100] * 4, [0.5] * 4, draws=[0, 0, 1, 1])
    assert hardware_noise.replicas_differ(same) == (0, 2)
    one_seed = _cell(spread, [False] * 4, [100] * 4, [0.5] * 4, draws=[0, 1, 2, 3])
    assert hardware_noise.replicas_differ(one_seed) == (0, 0)


class _LogLaw:
    """A stand-in prediction: effective sigma_b 10^(-t / 100) at step t."""

    def effective_sigma(self, t):
        return 10.0 ** (-t / 100)


def test_effective_sigma_is_the_median_over_networks_with_bounds():
    cell = _cell(np.zeros((4, 2, 1)), [True] * 4, [100, 200, 300, 400], [0.5] * 4, steps=1000)
    assert np.allclose(hardware_noise.network_sigmas(cell, _LogLaw()),
                       [1e-1, 1e-2, 1e-3, 1e-4])
    sigma, (low, high), bound = hardware_noise._effective(_LogLaw(), cell)
    assert not bound and math.isclose(sigma, 1e-2) and low <= sigma <= high
    # one of four breaks: the median is not reached; the median of the networks' values (the
    # reading 1e-1 and three bounds 1e-10 at the budget) bounds it from above
    late = _cell(np.zeros((4, 2, 1)), [True, False, False, False], [100, 1000, 1000, 1000],
                 [0.5] * 4, steps=1000)
    sigma, _, bound = hardware_noise._effective(_LogLaw(), late)
    assert bound and math.isclose(sigma, 1e-10)
    assert math.isnan(hardware_noise._effective(None, late)[0])


@pytest.fixture(scope="module")
def hardware_run(tmp_path_factory):
    study = config.parse_study(STUDY)
    run_dir = tmp_path_factory.mktemp("hardware") / "run"
    return run_dir, run_study(study, run_dir, progress=False)


def test_exact_twins_stay_identical_and_the_section_reads_the_run(hardware_run, tmp_path):
    """Identical units at sigma_b = 0 under the exact kernel: every spread exactly 0, nothing
    breaks, every draw's replicas end alike. The plain rows are whatever this CPU's kernels
    do; the section states them with the machine, and the answer says both."""
    from jaxsym import reporting
    from jaxsym.analysis import sections

    run_dir, ds = hardware_run
    exact = ds.sel(kernel="exact")
    assert float(np.abs(exact.spread).max()) == 0.0
    assert not bool(exact.broken.any())
    numbers = dict(sections.analyse(sections.load([run_dir])))["hardware_noise"]
    (run,) = numbers["runs"]
    cells = {c["kernel"]: c for c in run["cells"]}
    assert (cells["exact"]["asymmetric"], cells["exact"]["k"]) == (0, 0)
    assert cells["exact"]["replicas"] == (0, 2)  # CPU kernels are deterministic
    plain = cells["plain"]
    assert plain["n"] == 4 and plain["k"] <= plain["asymmetric"]  # no break without a bit
    # the effective sigma_b is finite (a reading or, when the median is not reached, a bound)
    assert math.isfinite(plain["sigma_eff"]) and plain["sigma_eff"] > 0
    report = reporting.write_report([run_dir], tmp_path).read_text()
    assert "## Hardware noise as a dose" in report
    assert "twins differed in 0 of 4 networks and 0 broke" in report
    assert "**Can the hardware break the symmetry for you?**" in report
    assert (tmp_path / "hardware_noise.png").exists()


def test_script_plans_every_setting_and_refuses_a_gpu_run_without_a_gpu():
    script = ROOT / "benchmarks" / "hardware_noise.py"
    plan_text = subprocess.run([sys.executable, str(script), "--dry-run"], capture_output=True,
                               text=True, check=True).stdout
    for setting in ("default", "highest", "deterministic", "tf32", "bf16"):
        assert f"# {setting}:" in plan_text
    assert "XLA_FLAGS=--xla_gpu_deterministic_ops=true" in plan_text
    assert "JAX_DEFAULT_MATMUL_PRECISION=tensorfloat32" in plan_text
    assert plan_text.count(" -m jaxsym run hardware_noise ") == 5
    bad = subprocess.run([sys.executable, str(script), "--settings", "fast"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "allowed on gpu: default, highest" in bad.stderr
    cpu_plan = subprocess.run([sys.executable, str(script), "--device", "cpu", "--dry-run"],
                              capture_output=True, text=True, check=True).stdout
    assert cpu_plan.count(" -m jaxsym run hardware_noise ") == 5
    assert "--xla_cpu_max_isa=SSE4_2" in cpu_plan and "--strategy map" in cpu_plan
    if jax.default_backend() != "gpu":
        refused = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
        assert refused.returncode == 2 and "no GPU here" in refused.stderr


@pytest.mark.skipif(jax.default_backend() != "gpu",
                    reason="the GPU rows need a GPU (benchmarks/hardware_noise.py runs them)")
def test_gpu_rows(tmp_path):
    script = ROOT / "benchmarks" / "hardware_noise.py"
    done = subprocess.run([sys.executable, str(script), "--out", str(tmp_path / "out"),
                           "--runs", str(tmp_path / "runs"), "--settings",
                           "highest,deterministic", "--draws", "2", "--seeds", "2",
                           "--steps", "300"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    summary = (tmp_path / "out" / "SUMMARY.md").read_text()
    assert summary.count("## Hardware noise as a dose") == 2
