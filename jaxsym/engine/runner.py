"""Compiled chunk functions: many networks of one static group per call, sharded over devices.

Contract: :func:`make_runner` ``(spec, root, strategy, devices, batch)`` returns a
:class:`Runner` ``(grid_idx, seed_idx, knobs, data) -> records`` and the sharding of its
network axis; network (g, s) of the chunk trains from key ``fold_in(fold_in(key(root), g), s)``
with :func:`jaxsym.core.network.run_network`, so its result depends on nothing else (not the
chunk, its padding, the strategy's batching or the device count). Nothing here reads or writes
files.

* Each chunk is padded to a multiple of the local device count (times the map batch) and
  sharded over a 1-D mesh ``("nets",)``. Strategy "map" (the CPU default) trains each device's
  networks a few at a time (:func:`nets_per_map_step`, vmapped) with ``lax.map`` inside
  ``shard_map``; "vmap" (the GPU default) vectorises all of them.
* On CPU the LAPACK calls inside a chunk (the exact s2/s1 SVDs) run with ``cores // devices``
  BLAS threads (:class:`Runner`): with one XLA device per core, OpenBLAS's own worker threads
  only compete with the other devices (a 256 x 256 SVD took ~10x longer).
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym.core import network
from jaxsym.core.spec import KNOBS
from jaxsym.study import tasks

__all__ = ["make_runner", "Runner", "blas_threads", "nets_per_map_step", "default_strategy",
           "chunk_arguments", "task_data", "padded_length"]


def task_data(task: tasks.Task, loss: str) -> dict:
    """Device arrays of the task, with targets in the format ``loss`` expects: ``x_train,
    y_train, x_test, y_test`` (+ ``x_val, y_val`` with a validation split; + integer
    ``labels_train, labels_test[, labels_val]`` for classification)."""
    data = {"x_train": task.x_train, "y_train": tasks.targets_for_loss(task, task.y_train, loss),
            "x_test": task.x_test, "y_test": tasks.targets_for_loss(task, task.y_test, loss)}
    if task.n_val:
        data["x_val"] = task.x_val
        data["y_val"] = tasks.targets_for_loss(task, task.y_val, loss)
    if task.kind == "classification":
        data["labels_train"], data["labels_test"] = task.y_train, task.y_test
        if task.n_val:
            data["labels_val"] = task.y_val
    return {k: jnp.asarray(v) for k, v in data.items()}


def default_strategy() -> str:
    """"map" on CPU (sequential per device beats a big vmap there), "vmap" on accelerators."""
    return "map" if jax.default_backend() == "cpu" else "vmap"


def nets_per_map_step(spec) -> int:
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


def padded_length(chunk_size: int, group_size: int, step: int) -> int:
    """The one length every chunk of a group is padded to (so the group compiles once):
    ``min(chunk_size, group_size)`` rounded up to a multiple of ``step`` (devices x map batch);
    ``group_size`` is the group's networks per data draw."""
    return -(-min(chunk_size, group_size) // step) * step


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
    against 63-67 ms with the default pool (both under the same load). The limit is scoped to
    the call (threadpoolctl): nothing global changes. The call blocks until the records are
    ready (the limit must outlive the asynchronous dispatch).
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
def make_runner(spec, root: int, strategy: str, devices: tuple, batch: int = 1):
    """A :class:`Runner` ``(grid_idx, seed_idx, knobs, data) -> records`` over a chunk of
    networks (jitted; on CPU with :func:`blas_threads` BLAS threads), and its sharding.

    ``grid_idx, seed_idx: (n,)`` int32 and ``knobs: (n, len(KNOBS))`` must have ``n`` a multiple
    of ``len(devices) * batch``; the network axis is sharded over ``devices``. Strategy "map":
    each device runs ``lax.map`` over its networks, ``batch`` at a time (vmapped); "vmap": each
    device vmaps all of its networks at once.
    """
    def one(grid_index, seed_index, knob_row, data):
        key = jax.random.fold_in(jax.random.fold_in(jax.random.key(root), grid_index), seed_index)
        knobs = {k: knob_row[i] for i, k in enumerate(KNOBS)}
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


def chunk_arguments(nets: np.ndarray, length: int, n_seeds: int, knobs: np.ndarray, dtype,
                    sharding) -> list:
    """``(grid_idx, seed_idx, knobs)`` of a runner call for networks ``nets`` (flat ids),
    padded to ``length`` by repeating the last network and placed with ``sharding``."""
    padded = np.concatenate([nets, np.repeat(nets[-1:], length - len(nets))])
    grid_idx, seed_idx = padded // n_seeds, padded % n_seeds
    return [jax.device_put(a, sharding) for a in (
        grid_idx.astype(np.int32), seed_idx.astype(np.int32), knobs[grid_idx].astype(dtype))]
