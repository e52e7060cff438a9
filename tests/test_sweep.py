"""The engine: invariances (chunking, devices, resume, seeds), divergence, no recompiles."""

import json
import os
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from jaxsym.study import config
from jaxsym.core import network
from jaxsym.core.spec import checkpoint_steps
from jaxsym.engine import runner, store
from jaxsym.engine.run import run_study

SMALL = """
name = "small"
[task]
name = "teacher_student"
dim = 2
teacher_width = 2
n_train = 64
n_test = 32
[model]
depth = 3
width = 4
activation = "tanh"
[train]
learning_rate = 0.2
steps = 40
dtype = "{dtype}"
batch_size = {batch_size}
[grid]
sigma_b = [0.0, 1e-3, 0.3]
activation = ["tanh", "relu"]
[seeds]
count = {seeds}
[record]
checkpoints = 8
gradient_steps = 4
"""


def small_text(dtype="float64", seeds=5, batch_size=0, groups=2):
    """SMALL's TOML; ``groups=1`` drops the activation axis (one static group: one compile)."""
    text = SMALL.format(dtype=dtype, seeds=seeds, batch_size=batch_size)
    return text if groups == 2 else text.replace('activation = ["tanh", "relu"]\n', "")


def small_study(dtype="float64", seeds=5, batch_size=0, groups=2):
    return config.parse_study(small_text(dtype, seeds, batch_size, groups))


def assert_identical(a: xr.Dataset, b: xr.Dataset):
    assert set(a.data_vars) == set(b.data_vars)
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_schema(tmp_path):
    ds = run_study(small_study(), tmp_path / "run", chunk_size=64, progress=False)
    assert dict(ds.sizes) == {"sigma_b": 3, "activation": 2, "seed": 5, "step": 8, "layer": 2,
                              "grad_step": 4, "weight_layer": 3}
    assert ds.loss.dims == ("sigma_b", "activation", "seed", "step")
    assert ds.diversity.dims == ("sigma_b", "activation", "seed", "step", "layer")
    assert list(ds.step.values) == list(checkpoint_steps(40, 8))
    assert ds.attrs["config"].startswith("\nname = \"small\"")
    # sigma_b = 0 keeps every unit identical: spread exactly at rounding level, never broken
    assert float(ds.spread.sel(sigma_b=0.0).max()) < 1e-12
    assert not ds.broken.sel(sigma_b=0.0).any()
    assert ds.broken.sel(sigma_b=0.3).any()
    assert (ds.diversity.sel(sigma_b=0.3).isel(step=-1) > 1e-6).all()
    loaded = store.load(tmp_path / "run")
    assert_identical(ds, loaded)
    assert loaded.broken.dtype == bool


def test_chunk_size_invariance(tmp_path):
    study = small_study(groups=1)
    runs = [run_study(study, tmp_path / f"c{k}", chunk_size=k, progress=False)
            for k in (1, 7, 1000)]
    assert_identical(runs[0], runs[1])
    assert_identical(runs[0], runs[2])


def test_resume_equals_uninterrupted(tmp_path):
    study = small_study(batch_size=16, groups=1)
    full = run_study(study, tmp_path / "full", chunk_size=6, progress=False)
    assert run_study(study, tmp_path / "cut", chunk_size=6, progress=False,
                           max_chunks=2) is None
    assert len(list((tmp_path / "cut" / "chunks").glob("*.npz"))) == 2
    assert not (tmp_path / "cut" / "results.nc").exists()
    resumed = run_study(study, tmp_path / "cut", chunk_size=4, progress=False)
    assert_identical(full, resumed)
    assert resumed.attrs["networks_trained_now"] == study.n_networks - 12 == 3


def test_seeds_are_prefix_stable(tmp_path):
    eight = run_study(small_study(seeds=8, groups=1), tmp_path / "s8", progress=False)
    sixteen = run_study(small_study(seeds=16, groups=1), tmp_path / "s16",
                              progress=False)
    assert_identical(eight, sixteen.isel(seed=slice(0, 8)))


def test_divergence_is_flagged_frozen_and_nan_free(tmp_path):
    study = config.apply_overrides(small_study(dtype="float32"),
                                   {"train.learning_rate": 50.0, "model.activation": "relu"})
    study = config.apply_overrides(study, {"grid.activation": ["relu"]})
    ds = run_study(study, tmp_path / "run", progress=False)
    assert ds.diverged.any()
    for name in ("loss", "final_loss", "spread", "diversity", "grad_norm"):
        assert np.all(np.isfinite(ds[name].values)), name
    assert not ds.converged.where(ds.diverged, False).any()


def test_different_study_is_refused(tmp_path):
    first = run_study(small_study(groups=1), tmp_path / "run", progress=False)
    # another learning rate: the same compiled program, a different study
    other = config.apply_overrides(small_study(groups=1), {"train.learning_rate": 0.3})
    with pytest.raises(store.RunDirError, match="different study"):
        run_study(other, tmp_path / "run", progress=False)
    assert_identical(store.load(tmp_path / "run"), first)  # refused: nothing overwritten
    ds = run_study(other, tmp_path / "run", progress=False, force=True)
    assert json.loads(ds.attrs["study"])["sections"]["train"]["learning_rate"] == 0.3
    assert not np.array_equal(ds.final_loss.values, first.final_loss.values)


def test_one_compile_per_static_group(tmp_path, monkeypatch):
    traces = []
    original = network.run_network

    def counting(*args, **kwargs):
        traces.append(args[3])
        return original(*args, **kwargs)

    monkeypatch.setattr(network, "run_network", counting)
    study = config.parse_study(SMALL.format(dtype="float32", seeds=2, batch_size=0).replace(
        "sigma_b = [0.0, 1e-3, 0.3]", "sigma_b = {logspace = [-8, 0], num = 50}").replace(
        "steps = 40", "steps = 13"))
    run_study(study, tmp_path / "run", chunk_size=16, progress=False)
    assert study.n_networks == 200
    assert len(traces) == 2  # two activations, one trace each, whatever the number of chunks
    assert {spec.activation for spec in traces} == {"tanh", "relu"}


DEVICE_SCRIPT = textwrap.dedent("""
    import sys
    import jax
    import numpy as np
    from jaxsym.study import config, tasks
    from jaxsym.core import network
    from jaxsym.core.spec import KNOBS
    from jaxsym.engine import runner
    from jaxsym.engine.run import run_study
    from jaxsym.study import plan
    study = config.parse_study(open(sys.argv[1]).read())
    ds = run_study(study, sys.argv[2], chunk_size=5, progress=False)
    devices = tuple(jax.local_devices())
    assert ds.attrs["n_devices"] == len(devices) == int(sys.argv[3])
    if len(devices) > 1:
        # every strategy equals the straightforward one-network jit (map batches > 1 used to
        # deadlock in the batched SVD on a multi-device CPU)
        task = tasks.make_task(study.get("task.name"), seed=study.get("task.seed"),
                               **study.task_options)
        group = plan.plan_groups(study, task)[0]
        data = runner.task_data(task, group.spec.loss)
        knobs = plan.knob_table(study).astype(np.float32)
        nets = np.arange(4 * len(devices)) % study.n_networks
        grid, seed = nets // study.get("seeds.count"), nets % study.get("seeds.count")
        root = study.get("seeds.root")
        one = jax.jit(lambda key, row: network.run_network(key, dict(zip(KNOBS, row)),
                                                           data, group.spec))
        straight = [one(jax.random.fold_in(jax.random.fold_in(jax.random.key(root), g), s),
                        knobs[g]) for g, s in zip(grid, seed)]
        # the study on every device (chunks of 5, padded) equals one network at a time
        for flat, (g, s) in enumerate(zip(grid, seed)):
            if flat >= study.n_networks:
                break
            for name in ds.data_vars:
                np.testing.assert_allclose(ds[name].values[g, s], straight[flat][name],
                                           rtol=1e-6, atol=1e-6, err_msg=f"study {name}")
        for strategy, batch in (("map", 1), ("map", 4), ("vmap", 1)):
            run, sharding = runner.make_runner(group.spec, root, strategy, devices, batch)
            args = runner.chunk_arguments(nets, len(nets), study.get("seeds.count"), knobs,
                                          np.float32, sharding)
            got = jax.device_get(run(*args, data))
            for name, value in got.items():
                expected = np.stack([r[name] for r in straight])
                np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-6,
                                           err_msg=f"{strategy} {batch} {name}")
""")


def test_device_count_invariance(tmp_path):
    """On 4 CPU devices the study (chunks of 5 networks, padded to the devices) and every
    strategy (map with 1 or 4 networks per step, vmap) equal one jitted network at a time on
    one device, network by network: the device count does not enter a result."""
    config_path = tmp_path / "study.toml"
    config_path.write_text(small_text(dtype="float32", seeds=3, batch_size=16, groups=1))
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    out = tmp_path / "d4"
    subprocess.run([sys.executable, "-c", DEVICE_SCRIPT, str(config_path), str(out), "4"],
                   check=True, env=env)
    ds = store.load(out)
    assert ds.attrs["n_devices"] == 4 and ds.sizes["sigma_b"] * ds.sizes["seed"] == 9


def test_classification_records_accuracy_and_top_level_load(tmp_path):
    import jaxsym

    text = SMALL.format(dtype="float32", seeds=2, batch_size=0).replace(
        'name = "teacher_student"\ndim = 2\nteacher_width = 2', 'name = "xor"').replace(
        "[train]", '[train]\nloss = "softmax_ce"').replace(
        'activation = ["tanh", "relu"]', 'activation = ["tanh"]')
    ds = run_study(config.parse_study(text), tmp_path / "run", progress=False)
    assert ds.attrs["task_kind"] == "classification"
    assert ((ds.test_accuracy >= 0) & (ds.test_accuracy <= 1)).all()
    # with sigma_b = 0.3 the network fits xor's training set better than chance
    assert float(ds.final_accuracy.sel(sigma_b=0.3).mean()) > 0.6
    assert_identical(ds, jaxsym.load(tmp_path / "run"))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one(tmp_path):
    """`jaxsym run --distributed`: 2 processes x 2 forced CPU devices on localhost, sharing one
    run directory, give exactly the single-process results; each trained only its share."""
    config_path = tmp_path / "study.toml"
    config_path.write_text(small_text(dtype="float32", seeds=3, batch_size=16, groups=1))
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    common = [sys.executable, "-m", "jaxsym", "run", str(config_path), "--chunk-size", "4",
              "--no-progress"]
    port = _free_port()
    procs = [subprocess.Popen(common + ["--out", str(tmp_path / "multi"), "--distributed",
                                        "--coordinator", f"localhost:{port}",
                                        "--num-processes", "2", "--process-id", str(i)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for i in (1, 0)]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    assert "process 1/2: share of study small written" in logs[0]
    subprocess.run(common + ["--out", str(tmp_path / "single")], check=True, env=env,
                   capture_output=True)
    multi, single = store.load(tmp_path / "multi"), store.load(tmp_path / "single")
    assert_identical(multi, single)
    assert (multi.attrs["processes"], single.attrs["processes"]) == (2, 1)
    # one group of 9 networks in chunks of 4 (4, 4, 1): 3 chunks, no duplicates
    chunks = store.read_chunks(tmp_path / "multi")
    assert len(chunks) == 3
    assert sorted(n for c in chunks for n in c["net"]) == list(range(9))


def test_process_share_and_wait(tmp_path):
    """Without process 0 the run directory never appears: another process times out cleanly."""
    study = config.parse_study(SMALL.format(dtype="float32", seeds=1, batch_size=0))
    with pytest.raises(TimeoutError, match="process 1: timed out waiting for process 0"):
        run_study(study, tmp_path / "never", process_index=1, process_count=2,
                        wait_timeout=0.3, poll_interval=0.1, progress=False)
    with pytest.raises(ValueError, match="process_index must be in"):
        run_study(study, tmp_path / "bad", process_index=2, process_count=2)



def test_per_layer_break_times_are_consistent(tmp_path):
    """Each hidden layer's first-hit time: the network breaks only when every layer has (so its
    time is >= every layer's), and an unbroken layer is censored at the budget."""
    ds = run_study(small_study(groups=1), tmp_path / "run", progress=False)
    assert ds["time_to_break_layer"].dims[-1] == "layer" and ds.sizes["layer"] == 2
    layers, times = ds["broken_layer"], ds["time_to_break_layer"]
    broken = ds["broken"]
    assert bool((~broken | layers.all("layer")).all())
    assert bool((~broken | (ds["time_to_break"] >= times.max("layer"))).all())
    assert bool(((layers) | (times == ds.attrs["steps"])).all())
    assert bool(layers.sel(sigma_b=0.3).any())  # not vacuous: some layer breaks
    assert not bool(layers.sel(sigma_b=0.0).any())  # identical units: no layer breaks


def test_data_draws_extend_the_seed_axis(tmp_path):
    """task.draws = 2 trains every grid point on two training sets (task seeds 0 and 1): the
    seed axis holds draws x seeds with a ``draw`` coordinate; draw 0's networks are exactly
    the one-draw study's, and draw 1's are the networks of the same seed indices in a one-draw
    study on task seed 1 (a network's result depends only on its grid point, seed index and
    data)."""
    text = small_text(seeds=2, groups=1)
    two = run_study(config.parse_study(text.replace("n_test = 32", "n_test = 32\ndraws = 2")),
                          tmp_path / "two", chunk_size=3, progress=False)
    assert two.sizes["seed"] == 4 and two.attrs["draws"] == 2
    assert two.draw.values.tolist() == [0, 0, 1, 1]
    one = run_study(config.parse_study(text), tmp_path / "one", progress=False)
    assert_identical(two.isel(seed=[0, 1]), one)
    shifted = run_study(config.parse_study(
        small_text(seeds=4, groups=1).replace("n_test = 32", "n_test = 32\nseed = 1")),
        tmp_path / "shifted", progress=False)
    assert_identical(two.isel(seed=[2, 3]), shifted.isel(seed=[2, 3]))
    # the draws differ (another training set): not a relabelling
    assert not np.array_equal(two.final_loss.values[:, 2:], one.final_loss.values)


def test_draws_must_be_a_positive_integer():
    with pytest.raises(config.ConfigError, match="task.draws"):
        config.parse_study(small_text().replace("n_test = 32", "n_test = 32\ndraws = 0"))


def test_runner_limits_blas_threads_only_during_the_call():
    """On CPU the chunk function runs with cores // devices BLAS threads (OpenBLAS's spinning
    workers slowed the engine's SVDs ~10x); before and after the call nothing is changed."""
    from threadpoolctl import threadpool_info

    def blas():
        return sorted(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")

    before, seen = blas(), []

    def compiled(x):
        seen.append(blas())
        return jnp.asarray(x) + 1

    cores = len(os.sched_getaffinity(0))
    chunk_function = runner.Runner(compiled, n_devices=cores)
    assert chunk_function.threads == runner.blas_threads(cores) == 1
    assert runner.blas_threads(1) == cores
    assert int(chunk_function(1)) == 2
    assert seen and all(n == 1 for n in seen[0]), seen
    assert blas() == before
