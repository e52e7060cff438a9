"""Execute a study plan: lock -> prepare the run directory -> train the chunks -> merge.

Contract: :func:`run_study` trains every network of a :class:`jaxsym.study.plan.StudyPlan` (or
of a Study, planned here) into run directory ``out`` and returns the merged ``xarray.Dataset``
(also written to ``OUT/results.nc``). Network (g, s) trains from key
``fold_in(fold_in(key(seeds.root), g), s)`` on data draw ``s // seeds.count``; its result
depends on nothing else (not the chunk size, the device count, the process count or
resumption). Finished chunks are written atomically, so re-running resumes; corrupt chunks and
chunks of another jaxsym version are deleted and re-trained; a corrupt results.nc is rebuilt.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Callable

import jax
import numpy as np

from jaxsym import __version__
from jaxsym.core.precision import float64_scope
from jaxsym.engine import provenance, runner, store
from jaxsym.study import config
from jaxsym.study import plan as plan_module

from jaxsym.core.records import record_shapes

__all__ = ["RunOptions", "run_study"]


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How a plan is executed (none of these changes a network's result).

    Attributes:
      force: overwrite a run directory that holds a different study.
      strategy: "auto", "map" or "vmap" (see :mod:`jaxsym.engine.runner`).
      map_batch: networks per ``lax.map`` step under "map" (None:
        :func:`jaxsym.engine.runner.nets_per_map_step`).
      progress: show a tqdm progress bar (networks done, networks/s).
      max_chunks: stop after this many new chunks (None = all); used to test resumption.
      process_index, process_count: for several processes sharing ``out`` (e.g. after
        ``jax.distributed.initialize()``): chunk k of the plan is trained by process
        ``k % process_count``, on that process's local devices. Process 0 prepares the run
        directory, then waits for every chunk and merges; the others return None when their
        share is written.
      wait_timeout, poll_interval: how long (s) a process waits for the run directory (others)
        or for the other processes' chunks (process 0), and how often it looks.
      wait: when another process holds the run directory's lock, wait for it instead of raising
        :class:`jaxsym.engine.store.RunLockedError`.
      log: ``log(message)`` for notes about recovery (corrupt chunks re-trained, a corrupt
        results.nc rebuilt); None: print to stderr.
    """

    force: bool = False
    strategy: str = "auto"
    map_batch: int | None = None
    progress: bool = True
    max_chunks: int | None = None
    process_index: int = 0
    process_count: int = 1
    wait_timeout: float = 7 * 24 * 3600.0
    poll_interval: float = 1.0
    wait: bool = False
    log: Callable[[str], None] | None = None

    def resolved(self) -> "RunOptions":
        """These options checked (ValueError naming the option) with "auto" resolved."""
        strategy = runner.default_strategy() if self.strategy == "auto" else self.strategy
        if strategy not in ("map", "vmap"):
            raise ValueError(f"unknown strategy {self.strategy!r}; allowed: auto, map, vmap")
        if self.map_batch is not None and self.map_batch < 1:
            raise ValueError(f"map_batch must be >= 1, got {self.map_batch}")
        if not 0 <= self.process_index < self.process_count:
            raise ValueError(f"process_index must be in [0, {self.process_count}), got "
                             f"{self.process_index}")
        return dataclasses.replace(self, strategy=strategy, log=self.log or _note)


def run_study(planned, out, options: RunOptions | None = None, *,
              chunk_size: int | None = None, **keywords):
    """Train every network of ``planned`` into run directory ``out``; return the Dataset.

    Args:
      planned: a :class:`jaxsym.study.plan.StudyPlan`, or a validated Study (then planned here
        with ``chunk_size``, default 256).
      out: run directory (created; resumed when it holds the same study).
      options: a :class:`RunOptions`; ``keywords`` (its field names) override its fields.
      chunk_size: networks per compiled call, only with a Study (a plan holds its own).

    Returns:
      the merged ``xarray.Dataset``; None when stopped early by ``max_chunks`` or on a process
      other than 0.

    Raises:
      ValueError: a bad option; jaxsym.engine.store.RunDirError: ``out`` holds another study
      or is locked; jaxsym.engine.store.RunWriteError: results.nc could not be written.
    """
    if isinstance(planned, config.Study):
        planned = plan_module.plan(planned, 256 if chunk_size is None else chunk_size)
    elif chunk_size is not None and chunk_size != planned.chunk_size:
        raise ValueError(f"chunk_size {chunk_size} differs from the plan's "
                         f"{planned.chunk_size}: plan the study with it")
    options = dataclasses.replace(options or RunOptions(), **keywords).resolved()
    out = Path(out)
    float64 = float64_scope(planned.study.get("train.dtype") == "float64")
    if options.process_index == 0:
        with store.lock_run_dir(out, wait=options.wait), float64:
            return _run_locked(planned, out, options)
    with float64:
        return _run_locked(planned, out, options)


def _note(message: str) -> None:
    print(f"jaxsym: {message}", file=sys.stderr, flush=True)


def _wait(ready, timeout: float, interval: float, message: str) -> None:
    """Poll ``ready()`` every ``interval`` s; raise TimeoutError(message) after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(message)
        time.sleep(interval)


def _required(planned) -> tuple:
    """The arrays every chunk of this jaxsym version holds: ``net`` and every record."""
    return ("net", *record_shapes(planned.groups[0].spec))


def _run_locked(planned, out: Path, options: RunOptions):
    """:func:`run_study` once the run directory is locked (process 0) and float64 scoped."""
    started = time.perf_counter()
    code = provenance.code_provenance()  # before training: see code_provenance
    done = _prepare(planned, out, options)
    pending = planned.n_networks - len(done)
    if pending == 0 and (out / "results.nc").exists():
        if options.process_index != 0:
            return None
        finished = _load_finished(planned, out, options)
        if finished is not None:
            return finished
    map_batches = _train_chunks(planned, out, options, done)
    if map_batches is None or options.process_index != 0:
        return None
    if options.process_count > 1:
        _wait(lambda: len(store.finished_networks(out, _required(planned))) >= planned.n_networks,
              options.wait_timeout, options.poll_interval,
              f"timed out waiting for the other processes' chunks in '{out}'")
    extra = {**code, "nets_per_map_step": json.dumps(map_batches),
             "wall_time_s": round(time.perf_counter() - started, 3),
             "networks_trained_now": pending}
    return _merge(planned, out, options, extra)


def _prepare(planned, out: Path, options: RunOptions) -> set[int]:
    """Make ``out`` ready and return the flat ids of the networks already done.

    Process 0 creates (or re-opens) the run directory and verifies the existing chunks once:
    corrupt ones and those of another jaxsym version are deleted (with a note), and a
    results.nc next to deleted chunks goes too. Other processes wait for process 0's run
    directory, then read what is done."""
    required = _required(planned)
    if options.process_index != 0:
        _wait(lambda: store.holds_study(out, planned.study), options.wait_timeout,
              options.poll_interval, f"process {options.process_index}: timed out waiting for "
              f"process 0 to prepare '{out}'")
        return store.finished_networks(out, required)
    resumed = store.prepare_run_dir(out, planned.study, force=options.force)
    good, bad = store.scan_chunks(out, required) if resumed else ([], [])
    done = {int(n) for chunk in good for n in chunk["net"]}
    del good  # the merge reads them again, with the new ones
    stale = [error for error in bad if isinstance(error, store.StaleChunkError)]
    for error in bad:
        Path(error.path).unlink()
        if not isinstance(error, store.StaleChunkError):
            options.log(f"{error}: deleted; its networks are re-trained")
    if stale:
        options.log(f"{len(stale)} chunk(s) in '{out}' were written by another jaxsym version "
                    f"(e.g. '{Path(stale[0].path).name}': {stale[0].records_text}): "
                    "deleted; their networks are re-trained")
    if bad and (out / "results.nc").exists():
        (out / "results.nc").unlink()
    return done


def _presentation(study) -> dict:
    """The attributes of results.nc that say how the run is shown, not what it computed:
    ``report_section`` and the config (text, preset, overrides) that names it."""
    return {"report_section": study.get("report.section"), "config": study.text,
            "preset": study.preset, "overrides": json.dumps(dict(study.overrides))}


def _load_finished(planned, out: Path, options: RunOptions):
    """A finished run's results as they are (its provenance, git sha and wall time kept), or
    None when results.nc is corrupt (it is then rebuilt from the verified chunks). When the
    study's ``[report] section`` or its config text (comments, the study's description: not
    part of the run's identity) changed since, results.nc is rewritten with the new section and
    config, so a report rendered from it shows the config as it is now; its numbers are
    untouched."""
    from jaxsym.engine import results

    try:
        dataset = store.load(out)
    except store.CorruptFileError as error:
        options.log(f"{error.problem}: rebuilding it from the chunks")
        return None
    shown = _presentation(planned.study)
    if any(dataset.attrs.get(key) != shown[key] for key in ("report_section", "config")):
        dataset.attrs.update(shown)
        results.write(dataset, out / "results.nc")
    dataset.attrs["networks_trained_now"] = 0
    return dataset


def _group_batches(planned, options: RunOptions) -> dict[int, int]:
    """Networks per ``lax.map`` step of every group (1 under "vmap")."""
    return {group.index: 1 if options.strategy != "map"
            else (options.map_batch or runner.nets_per_map_step(group.spec))
            for group in planned.groups}


def _train_chunks(planned, out: Path, options: RunOptions, done: set[int]):
    """Train and write this process's share of the chunks not yet done.

    Every chunk of a group is padded to one length (:func:`jaxsym.engine.runner.padded_length`),
    so the group compiles once; padding repeats the chunk's last network and is dropped.
    Returns the map batch of every group, or None when stopped by ``max_chunks``."""
    from tqdm.auto import tqdm

    study, devices = planned.study, tuple(jax.local_devices())
    batches = _group_batches(planned, options)
    bar = tqdm(total=planned.n_networks, initial=len(done), unit="net",
               disable=not options.progress, desc=study.name, smoothing=0.1)
    new_chunks, compiled, data = 0, {}, {}
    for chunk in planned.chunks:
        if chunk.index % options.process_count != options.process_index:
            continue
        nets = np.asarray([n for n in chunk.nets if int(n) not in done], np.int64)
        if len(nets) == 0:
            continue
        if options.max_chunks is not None and new_chunks >= options.max_chunks:
            bar.close()
            return None
        group = planned.groups[chunk.group]
        if chunk.group not in compiled:
            compiled = {chunk.group: runner.make_runner(
                group.spec, study.get("seeds.root"), options.strategy, devices,
                batches[chunk.group])}
        if (chunk.group, chunk.draw) not in data:
            data = {(chunk.group, chunk.draw): runner.task_data(planned.tasks[chunk.draw],
                                                                group.spec.loss)}
        run, sharding = compiled[chunk.group]
        length = runner.padded_length(planned.chunk_size,
                                      len(group.grid_indices) * study.get("seeds.count"),
                                      len(devices) * batches[chunk.group])
        args = runner.chunk_arguments(nets, length, planned.n_seeds, planned.knobs,
                                      study.get("train.dtype"), sharding)
        records = jax.device_get(run(*args, data[chunk.group, chunk.draw]))
        store.write_chunk(out, group.index, nets,
                          {k: np.asarray(v)[:len(nets)] for k, v in records.items()})
        new_chunks += 1
        bar.update(len(nets))
    bar.close()
    return batches


def _merge(planned, out: Path, options: RunOptions, extra: dict):
    """Merge every chunk into results.nc with the run's provenance; returns the Dataset.

    ``extra``: the provenance known only to the run (git, map batches, wall time, networks
    trained now)."""
    from jaxsym.engine import results

    devices = tuple(jax.local_devices())
    study = planned.study
    attrs = {"jaxsym_version": __version__, **provenance.machine_provenance(),
             "python": platform.python_version(), "backend": jax.default_backend(),
             "devices": str(devices), "n_devices": len(devices), "strategy": options.strategy,
             "nets_per_map_step": extra["nets_per_map_step"],
             "chunk_size": planned.chunk_size, "processes": options.process_count,
             "git_sha": extra["git_sha"], "git_dirty": extra["git_dirty"],
             "command": shlex.join(sys.argv), "wall_time_s": extra["wall_time_s"],
             "networks_trained_now": extra["networks_trained_now"],
             "report_section": study.get("report.section")}
    dataset = results.merge(study, list(planned.groups), planned.task,
                            store.read_chunks(out, _required(planned)), attrs)
    results.write(dataset, out / "results.nc")
    return dataset
