"""The sweep engine: (grid point x seed) -> chunks -> batched, sharded training -> one Dataset.

Contract: :func:`run_study` trains every network of a :class:`jaxsym.study.config.Study` and returns
the merged ``xarray.Dataset`` (also written to ``OUT/results.nc``). It is the only module that
knows about chunks and devices.

* The grid is the product of the config's grid axes, flattened in C order: grid index g.
  Network (g, s) has key ``fold_in(fold_in(key(seeds.root), g), s)`` and flat id
  ``g * n_seeds + s``; its result depends on nothing else (not chunk size, device count or
  resumption). With ``task.draws = D`` data draws, ``n_seeds = D * seeds.count`` and seed
  index ``s`` trains on draw ``s // seeds.count`` (task seed ``task.seed + draw``); with one
  draw nothing changes.
* Categorical axes (activation, loss, optimizer) split the grid into static groups, compiled
  once each; numeric axes, the weight init mode (an index, see jaxsym.core.network) and seeds are
  traced.
* Each chunk of ``chunk_size`` networks is padded to a multiple of the local device count (times
  the map batch) and sharded over a 1-D mesh ``("nets",)``. Strategy "map" (the CPU default)
  trains each device's networks a few at a time (:func:`nets_per_map_step`, vmapped) with
  ``lax.map`` inside ``shard_map``; "vmap" (the GPU default) vectorises all of them. Finished
  chunks are written atomically, so re-running resumes.
* On CPU the LAPACK calls inside a chunk (the exact s2/s1 SVDs) run with ``cores // devices``
  BLAS threads (:class:`Runner`): with one XLA device per core, OpenBLAS's own worker threads
  only compete with the other devices (a 256 x 256 SVD took ~10x longer).
"""

from __future__ import annotations

import functools
import json
import itertools
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym import __version__
from jaxsym.study import config, tasks
from jaxsym.core import network
from jaxsym.engine import store
from jaxsym.core.precision import float64_scope

__all__ = ["Group", "plan_groups", "run_study", "knob_table", "make_runner", "task_data",
           "nets_per_map_step", "group_networks", "chunk_arguments", "Runner", "blas_threads"]


#: categorical axes that are traced (an index) rather than compiled separately
TRACED_CATEGORICAL = ("weight_mode",)


@dataclass(frozen=True)
class Group:
    """Grid points sharing one static configuration.

    Attributes:
      index: group number (order of first appearance in the flat grid).
      categorical: ``((axis, value), ...)`` of the categorical grid axes.
      spec: the compiled-once :class:`jaxsym.core.network.NetworkSpec`.
      grid_indices: flat grid indices of this group's points, ascending.
    """

    index: int
    categorical: tuple
    spec: network.NetworkSpec
    grid_indices: np.ndarray


def _setting(study, point: dict, axis: str):
    return point[axis] if axis in point else study.get(f"{config.AXIS_SECTION[axis]}.{axis}")


def grid_points(study) -> list[dict]:
    """Every grid point as ``{axis: value}``, in flat (C) order."""
    axes = study.grid_axes
    return [dict(zip(axes, values)) for values in itertools.product(*(v for _, v in study.grid))]


def knob_table(study) -> np.ndarray:
    """``(n_grid_points, len(KNOBS))`` float64: every numeric knob at every grid point."""
    def value(point, knob):
        if knob == "weight_mode":
            return float(network.WEIGHT_MODES.index(_setting(study, point, knob)))
        return float(_setting(study, point, knob))

    return np.array([[value(p, k) for k in network.KNOBS] for p in grid_points(study)],
                    dtype=np.float64).reshape(-1, len(network.KNOBS))


def plan_groups(study, task: tasks.Task) -> list[Group]:
    """Split the grid into static groups (one compile each)."""
    points = grid_points(study)
    categorical_axes = [a for a in study.grid_axes
                        if a in config.CATEGORICAL_AXES and a not in TRACED_CATEGORICAL]
    members: dict[tuple, list[int]] = {}
    for g, point in enumerate(points):
        members.setdefault(tuple((a, point[a]) for a in categorical_axes), []).append(g)
    s = study.sections
    groups = []
    for index, (categorical, indices) in enumerate(members.items()):
        point = dict(categorical)
        loss = _setting(study, point, "loss")
        sizes = ((task.dim,) + (s["model"]["width"],) * (s["model"]["depth"] - 1)
                 + (tasks.output_width(task, loss),))
        spec = network.NetworkSpec(
            layer_sizes=sizes, activation=_setting(study, point, "activation"), loss=loss,
            optimizer=_setting(study, point, "optimizer"),
            fan_in_scaled=s["init"]["fan_in_scaled"], steps=s["train"]["steps"],
            batch_size=s["train"]["batch_size"], dtype=s["train"]["dtype"],
            checkpoints=network.checkpoint_steps(s["train"]["steps"], s["record"]["checkpoints"]),
            gradient_steps=min(s["record"]["gradient_steps"], s["train"]["steps"]),
            diversity_threshold=s["thresholds"]["diversity"],
            loss_threshold=s["thresholds"]["loss"],
            classification=task.kind == "classification",
            noisy=bool(max(dict(study.grid).get("noise", (s["train"]["noise"],))) > 0))
        groups.append(Group(index, categorical, spec, np.asarray(indices, np.int64)))
    return groups


def task_data(task: tasks.Task, loss: str) -> dict:
    """Device arrays of the task, with targets in the format ``loss`` expects."""
    data = {"x_train": task.x_train, "y_train": tasks.targets_for_loss(task, task.y_train, loss),
            "x_test": task.x_test, "y_test": tasks.targets_for_loss(task, task.y_test, loss)}
    if task.kind == "classification":
        data["labels_train"], data["labels_test"] = task.y_train, task.y_test
    return {k: jnp.asarray(v) for k, v in data.items()}


def default_strategy() -> str:
    """"map" on CPU (sequential per device beats a big vmap there), "vmap" on accelerators."""
    return "map" if jax.default_backend() == "cpu" else "vmap"


def nets_per_map_step(spec: network.NetworkSpec) -> int:
    """How many networks each device trains together (vmapped) per ``lax.map`` iteration under
    the "map" strategy: 8 when every hidden layer is at most 32 units wide, else 1.

    ``benchmarks/results/map_batch``: at width 16, 8 networks per step gave 1.3-1.5x the
    throughput of one at a time in every paired run (for 1.5-3 s more compile per static
    group); no gain at width 64 and above. The choice cannot change a conclusion: identical
    units compute bitwise-identical values under every batching (:mod:`jaxsym.core.dense`,
    tests/test_cross_machine.py), so whether a network breaks symmetry does not depend on
    it, only rounding-level digits do. Depends only on the static spec, so a network's result
    never depends on the chunk, the device count or the study size.
    """
    return 8 if max(spec.layer_sizes[1:-1], default=0) <= 32 else 1


def blas_threads(n_devices: int) -> int | None:
    """BLAS threads per XLA device while the engine runs: ``cores // n_devices`` (at least 1) on
    CPU, None (leave the BLAS library alone) on accelerators."""
    if jax.default_backend() != "cpu":
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // max(n_devices, 1))


@functools.lru_cache(maxsize=1)
def _threadpools():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


class Runner:
    """A compiled chunk function that, on CPU, runs with :func:`blas_threads` BLAS threads.

    The LAPACK kernels behind ``jnp.linalg.svd`` on CPU (SciPy's OpenBLAS) start their own
    worker threads, as many as there are cores, and those threads spin while they wait. With
    one XLA device per core each device's SVD then competes with the other devices' work
    and with its own helper threads: ``benchmarks/README.md`` ("Where the time goes") measured
    a 2-device map of 256 x 256 SVDs at 5.6-5.8 ms per SVD with one BLAS thread per device
    against 63-67 ms with the default pool (both under the same load). The limit is scoped to the call (threadpoolctl): nothing global changes. The call
    blocks until the records are ready (the limit must outlive the asynchronous dispatch).
    """

    def __init__(self, compiled, n_devices: int):
        self.compiled = compiled
        self.threads = blas_threads(n_devices)

    def lower(self, *args):
        """``jax.jit(...).lower`` of the compiled function (ahead-of-time compilation)."""
        return self.compiled.lower(*args)

    def __call__(self, *args):
        if self.threads is None:
            return jax.block_until_ready(self.compiled(*args))
        with _threadpools().limit(limits=self.threads, user_api="blas"):
            return jax.block_until_ready(self.compiled(*args))


@functools.lru_cache(maxsize=64)
def make_runner(spec: network.NetworkSpec, root: int, strategy: str, devices: tuple,
                batch: int = 1):
    """A :class:`Runner` ``(grid_idx, seed_idx, knobs, data) -> records`` over a chunk of
    networks (jitted; on CPU with :func:`blas_threads` BLAS threads).

    ``grid_idx, seed_idx: (n,)`` int32 and ``knobs: (n, len(KNOBS))`` must have ``n`` a multiple
    of ``len(devices) * batch``; the network axis is sharded over ``devices``. Strategy "map":
    each device runs ``lax.map`` over its networks, ``batch`` at a time (vmapped); "vmap": each
    device vmaps all of its networks at once.
    """
    def one(grid_index, seed_index, knob_row, data):
        key = jax.random.fold_in(jax.random.fold_in(jax.random.key(root), grid_index), seed_index)
        knobs = {k: knob_row[i] for i, k in enumerate(network.KNOBS)}
        return network.run_network(key, knobs, data, spec)

    def local(grid_idx, seed_idx, knobs, data):
        if strategy == "vmap":
            return jax.vmap(one, in_axes=(0, 0, 0, None))(grid_idx, seed_idx, knobs, data)
        if batch == 1:
            return jax.lax.map(lambda args: one(*args, data), (grid_idx, seed_idx, knobs))
        # lax.map(batch_size=...) by hand: its reshape of the outputs fails on zero-size
        # records (e.g. grad_norm with gradient_steps = 0)
        n = grid_idx.shape[0]
        blocks = jax.tree.map(lambda a: a.reshape((n // batch, batch) + a.shape[1:]),
                              (grid_idx, seed_idx, knobs))
        out = jax.lax.map(lambda args: jax.vmap(one, in_axes=(0, 0, 0, None))(*args, data),
                          blocks)
        return jax.tree.map(lambda a: a.reshape((n,) + a.shape[2:]), out)

    mesh = jax.make_mesh((len(devices),), ("nets",), devices=devices)
    nets = jax.P("nets")
    sharded = jax.shard_map(local, mesh=mesh, in_specs=(nets, nets, nets, jax.P()),
                            out_specs=nets, check_vma=False)
    return Runner(jax.jit(sharded), len(devices)), jax.NamedSharding(mesh, nets)


def group_networks(group: Group, n_seeds: int) -> np.ndarray:
    """Flat ids ``g * n_seeds + s`` of the group's networks, in the engine's order."""
    return (group.grid_indices[:, None] * n_seeds + np.arange(n_seeds)[None, :]).ravel()


def chunk_arguments(nets: np.ndarray, length: int, n_seeds: int, knobs: np.ndarray, dtype,
                    sharding) -> list:
    """``(grid_idx, seed_idx, knobs)`` of a runner call for networks ``nets`` (flat ids),
    padded to ``length`` by repeating the last network and placed with ``sharding``."""
    padded = np.concatenate([nets, np.repeat(nets[-1:], length - len(nets))])
    grid_idx, seed_idx = padded // n_seeds, padded % n_seeds
    return [jax.device_put(a, sharding) for a in (
        grid_idx.astype(np.int32), seed_idx.astype(np.int32), knobs[grid_idx].astype(dtype))]


def machine_provenance() -> dict:
    """What decides the rounding of a run: CPU model and vector ISA, device kind, XLA_FLAGS and
    package versions (recorded in results.nc and the report)."""
    import jaxlib
    import optax
    import scipy
    import xarray

    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model in ("unknown", "x86_64", ""):
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    isa = next((name for name, flag in (("AVX512", "avx512f"), ("AVX2", "avx2"),
                                        ("AVX", "avx"), ("SSE4_2", "sse4_2")) if flag in flags),
               platform.machine())
    device = jax.devices()[0]
    return {"cpu_model": model, "cpu_isa": isa, "device_kind": device.device_kind,
            "xla_flags": os.environ.get("XLA_FLAGS", ""), "jax_version": jax.__version__,
            "jaxlib_version": jaxlib.__version__, "optax_version": optax.__version__,
            "numpy_version": np.__version__, "scipy_version": scipy.__version__,
            "xarray_version": xarray.__version__}


def _wait(ready, timeout: float, interval: float, message: str) -> None:
    """Poll ``ready()`` every ``interval`` s; raise TimeoutError(message) after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(message)
        time.sleep(interval)


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(["git", *args], capture_output=True, text=True,
                                cwd=Path(__file__).parent, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _git_sha() -> str:
    """The commit of the jaxsym source that ran ("unknown" outside a git checkout)."""
    return _git("rev-parse", "HEAD") or "unknown"


def _git_dirty() -> str:
    """"yes" when tracked files differ from that commit, "no", or "unknown"."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return "unknown" if status is None else ("yes" if status else "no")


#: rough cost model of :func:`resource_estimate`'s ``seconds``, calibrated on the quick preset
#: on a 2-core AMD EPYC (about 20 us per network-step of small networks, plus the arithmetic at
#: about 50 GFLOP/s): a guard against typos in a grid, not a benchmark
SECONDS_PER_NET_STEP, FLOP_PER_SECOND = 2e-5, 5e10


def resource_estimate(study, task=None, concurrent: int = 16) -> dict:
    """Rough cost of a study, before anything runs: ``networks``; ``record_bytes``, the
    merged records (float64, every network, twice for the merge); ``train_bytes``, the
    parameters (x6: gradients, optimizer state, temporaries) and activations (x4: forward,
    backward) of ``concurrent`` networks training at once (devices x networks per step);
    ``flops`` (6 x parameters x batch per network-step: forward and backward) and ``seconds``
    (:data:`SECONDS_PER_NET_STEP` per network-step + ``flops`` / :data:`FLOP_PER_SECOND`)."""
    task = task or study.make_task(0)
    itemsize = 2 if study.get("train.dtype") == "bfloat16" else np.dtype(
        study.get("train.dtype")).itemsize
    batch = study.get("train.batch_size") or task.x_train.shape[0]
    per_net_records, per_net_train, per_net_flops = 0, 0, 0
    for group in plan_groups(study, task):
        sizes = group.spec.layer_sizes
        params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
        per_net_train = max(per_net_train, (6 * params + 4 * batch * sum(sizes)) * itemsize)
        per_net_flops = max(per_net_flops, 6 * params * batch)
        per_net_records = max(per_net_records, sum(
            int(np.prod(shape)) for shape in network.record_shapes(group.spec).values()))
    networks = study.n_networks
    net_steps = networks * study.get("train.steps")
    flops = float(net_steps) * per_net_flops
    return {"networks": networks, "record_bytes": 2 * 8 * networks * per_net_records,
            "train_bytes": min(concurrent, networks) * per_net_train, "flops": flops,
            "seconds": net_steps * SECONDS_PER_NET_STEP + flops / FLOP_PER_SECOND}


def check_resources(study, task=None) -> str | None:
    """A one-line refusal if :func:`resource_estimate` exceeds this machine's memory, else
    None."""
    estimate = resource_estimate(study, task)
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None
    need = estimate["record_bytes"] + estimate["train_bytes"]
    if need <= total:
        return None
    return (f"study '{study.name}' needs about {need / 2**30:.3g} GiB of memory "
            f"({estimate['networks']} networks: records {estimate['record_bytes'] / 2**30:.3g} "
            f"GiB, training {estimate['train_bytes'] / 2**30:.3g} GiB) and this machine has "
            f"{total / 2**30:.3g} GiB: reduce seeds.count, the grid, model.width or "
            "task.n_train")


def run_study(study, out, chunk_size: int = 256, force: bool = False, strategy: str = "auto",
              map_batch: int | None = None, progress: bool = True,
              max_chunks: int | None = None, process_index: int = 0,
              process_count: int = 1, wait_timeout: float = 7 * 24 * 3600.0,
              poll_interval: float = 1.0, wait: bool = False, log=None):
    """Train every network of ``study`` into run directory ``out``; return the Dataset.

    Args:
      study: a validated :class:`jaxsym.study.config.Study`.
      out: run directory (created; resumed when it holds the same study).
      chunk_size: networks per compiled call (memory grows with it, not with the study size).
      force: overwrite a run directory that holds a different study.
      strategy: "auto", "map" or "vmap".
      map_batch: networks per ``lax.map`` step under "map" (None: :func:`nets_per_map_step`).
      progress: show a tqdm progress bar (networks done, networks/s).
      max_chunks: stop after this many new chunks (None = all); used to test resumption.
      process_index, process_count: for several processes sharing ``out`` (e.g. after
        ``jax.distributed.initialize()``): chunk k of the whole study (chunks are cut from each
        group's full network list, so every process agrees on them) is trained by process
        ``k % process_count``, on that process's local devices. Process 0 prepares the run
        directory, then waits for every chunk and merges; the others return None when their
        share is written.
      wait_timeout, poll_interval: how long (s) a process waits for the run directory (others)
        or for the other processes' chunks (process 0), and how often it looks.
      wait: when another process holds the run directory's lock, wait for it instead of raising
        :class:`jaxsym.engine.store.RunLockedError` (process 0 holds the lock while it trains and
        merges).
      log: ``log(message)`` for notes about recovery (corrupt chunks re-trained, a corrupt
        results.nc rebuilt); default: print to stderr.

    Returns:
      the merged ``xarray.Dataset``; None when stopped early by ``max_chunks`` or on a process
      other than 0.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if strategy == "auto":
        strategy = default_strategy()
    if strategy not in ("map", "vmap"):
        raise ValueError(f"unknown strategy {strategy!r}; allowed: auto, map, vmap")
    if map_batch is not None and map_batch < 1:
        raise ValueError(f"map_batch must be >= 1, got {map_batch}")
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index must be in [0, {process_count}), got {process_index}")
    out = Path(out)
    float64 = float64_scope(study.get("train.dtype") == "float64")
    if process_index == 0:
        with store.lock_run_dir(out, wait=wait), float64:
            return _run_locked(study, out, chunk_size, force, strategy, map_batch, progress,
                               max_chunks, process_index, process_count, wait_timeout,
                               poll_interval, log)
    with float64:
        return _run_locked(study, out, chunk_size, force, strategy, map_batch, progress,
                           max_chunks, process_index, process_count, wait_timeout,
                           poll_interval, log)


def _note(message: str) -> None:
    print(f"jaxsym: {message}", file=sys.stderr, flush=True)


def _run_locked(study, out, chunk_size, force, strategy, map_batch, progress, max_chunks,
                process_index, process_count, wait_timeout, poll_interval, log):
    from tqdm.auto import tqdm

    from jaxsym.engine import results

    log = log or _note
    started = time.perf_counter()
    # the code that trains: read before training (a commit made while a long run trains must
    # not be recorded as its source)
    code = {"git_sha": _git_sha(), "git_dirty": _git_dirty()}
    draws = [study.make_task(k) for k in range(study.get("task.draws"))]
    task = draws[0]
    groups = plan_groups(study, task)
    required = ("net", *network.record_shapes(groups[0].spec))
    if process_index == 0:
        resumed = store.prepare_run_dir(out, study, force=force)
        # one verified read of the existing chunks: the corrupt ones go, the rest are done
        good, bad = store.scan_chunks(out, required) if resumed else ([], [])
        done = {int(n) for chunk in good for n in chunk["net"]}
        del good  # the merge reads them again, with the new ones
        stale = [path for path, reason in bad if "another jaxsym version" in reason]
        for path, reason in bad:
            path.unlink()
            if path not in stale:
                log(f"{reason}: deleted; its networks are re-trained")
        if stale:
            log(f"{len(stale)} chunk(s) in '{out}' were written by another jaxsym version "
                f"(e.g. '{stale[0].name}': {dict(bad)[stale[0]].split('(')[-1].rstrip(')')}): "
                "deleted; their networks are re-trained")
        if bad and (out / "results.nc").exists():
            (out / "results.nc").unlink()
    else:
        _wait(lambda: store.holds_study(out, study), wait_timeout, poll_interval,
              f"process {process_index}: timed out waiting for process 0 to prepare '{out}'")
    knobs = knob_table(study)
    count = study.get("seeds.count")
    n_seeds = study.networks_per_point
    if process_index != 0:
        done = store.finished_networks(out, required)
    devices = tuple(jax.local_devices())
    pending_total = study.n_networks - len(done)
    if pending_total == 0 and (out / "results.nc").exists() and process_index != 0:
        return None
    if pending_total == 0 and (out / "results.nc").exists():
        # finished earlier: keep that run's results and provenance (git sha, wall time) as-is,
        # unless results.nc is corrupt: then it is rebuilt from the (verified) chunks
        try:
            dataset = store.load(out)
            dataset.attrs["networks_trained_now"] = 0
            return dataset
        except store.CorruptFileError as error:
            log(f"{str(error).split(';')[0]}: rebuilding it from the chunks")
    bar = tqdm(total=study.n_networks, initial=len(done), unit="net", disable=not progress,
               desc=study.name, smoothing=0.1)
    new_chunks, chunk_number = 0, -1
    map_batches = {}
    for group in groups:
        group_nets = group_networks(group, n_seeds)
        # chunks are cut per data draw (one training set per compiled call); every chunk of a
        # group is padded to one length (a multiple of devices x batch), so the group compiles
        # once; padding repeats the chunk's last network and is dropped
        batch = 1 if strategy != "map" else (map_batch or nets_per_map_step(group.spec))
        map_batches[group.index] = batch
        step = len(devices) * batch
        per_draw = len(group_nets) // len(draws)
        length = -(-min(chunk_size, per_draw) // step) * step
        runner = sharding = None
        for draw, draw_task in enumerate(draws):
            nets = group_nets[(group_nets % n_seeds) // count == draw]
            data = None
            for start in range(0, len(nets), chunk_size):
                chunk_number += 1
                if chunk_number % process_count != process_index:
                    continue
                chunk = np.asarray([n for n in nets[start:start + chunk_size]
                                    if int(n) not in done], np.int64)
                if len(chunk) == 0:
                    continue
                if max_chunks is not None and new_chunks >= max_chunks:
                    bar.close()
                    return None
                if runner is None:
                    runner, sharding = make_runner(group.spec, study.get("seeds.root"),
                                                   strategy, devices, batch)
                if data is None:
                    data = task_data(draw_task, group.spec.loss)
                args = chunk_arguments(chunk, length, n_seeds, knobs, study.get("train.dtype"),
                                       sharding)
                records = jax.device_get(runner(*args, data))
                store.write_chunk(out, group.index, chunk,
                                  {k: np.asarray(v)[:len(chunk)] for k, v in records.items()})
                new_chunks += 1
                bar.update(len(chunk))
    bar.close()
    if process_index != 0:
        return None
    if process_count > 1:
        _wait(lambda: len(store.finished_networks(out, required)) >= study.n_networks,
              wait_timeout,
              poll_interval, f"timed out waiting for the other processes' chunks in '{out}'")
    wall = time.perf_counter() - started
    provenance = {"jaxsym_version": __version__, **machine_provenance(),
                  "python": platform.python_version(), "backend": jax.default_backend(),
                  "devices": str(devices), "n_devices": len(devices), "strategy": strategy,
                  "nets_per_map_step": json.dumps(map_batches),
                  "chunk_size": chunk_size, "processes": process_count, **code,
                  "command": shlex.join(sys.argv),
                  "wall_time_s": round(wall, 3), "networks_trained_now": pending_total}
    dataset = results.merge(study, groups, task, store.read_chunks(out, required), provenance)
    results.write(dataset, out / "results.nc")
    return dataset
