"""The ``jaxsym`` sub-commands: each takes the parsed arguments and returns the exit status.

Contract: every study runs through :mod:`jaxsym.api` (validate -> plan -> resource check ->
engine); a command prints its results to stdout, and any refusal as ONE line
``jaxsym: error: ...`` on stderr with status 2, before anything is written. Ctrl-C during a
run raises :class:`Interrupted` saying what was kept.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from jaxsym import api
from jaxsym.cli.parser import YES_HOURS, YES_NETWORKS
from jaxsym.study import config
from jaxsym.study.experiments import STUDY_FIGURES

__all__ = ["COMMANDS", "Interrupted", "use_all_cores", "release_compiled"]

#: the committed report of a source checkout (absent in an installed wheel)
CHECKOUT_FIGURES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "figures")


def use_all_cores() -> None:
    """One XLA CPU device per core, unless the user already chose (must run before JAX starts)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags and "jax" not in sys.modules:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={cores}".strip()


#: a study drops its compiled code once the process holds this fraction of the kernel's limit
#: on memory mappings (``vm.max_map_count``, 65,530 by default on Linux)
MAPPINGS_RELEASE_FRACTION = 0.5


def _mappings() -> tuple[int, int] | None:
    """``(memory mappings this process holds, the kernel's limit)``, or None off Linux."""
    try:
        with open("/proc/self/maps") as handle:
            held = sum(1 for _ in handle)
        with open("/proc/sys/vm/max_map_count") as handle:
            return held, int(handle.read())
    except (OSError, ValueError):
        return None


def release_compiled() -> bool:
    """Drop every compiled XLA executable (``jax.clear_caches``) when the process nears the
    kernel's limit on memory mappings; returns whether it did.

    XLA's CPU backend maps each JIT-compiled executable's code into memory regions that live
    as long as the executable, and JAX's caches keep every executable a study compiled: in one
    process the full preset passed Linux's default 65,530 mappings (``vm.max_map_count``)
    about 40 experiments in, and the compiler died with "LLVM ERROR: Unable to allocate
    section memory" ("Cannot allocate memory") with GBs of RAM free (measured: each
    calibration experiment adds ~1,000 mappings; after ``jax.clear_caches()`` the count falls
    back to ~1,100). Releasing only near the limit keeps the reuse between experiments that
    share static groups (a calibration's baselines and alternatives compile what its grid
    compiled). Where the count cannot be read (not Linux) it releases every time."""
    import jax

    held = _mappings()
    if held is not None and held[0] < MAPPINGS_RELEASE_FRACTION * held[1]:
        return False
    jax.clear_caches()
    return True


def _fail(message: str) -> int:
    print(f"jaxsym: error: {message}", file=sys.stderr)
    return 2


def _dir_problem(path: str, option: str) -> str | None:
    """Why ``path`` cannot be (or become) a writable directory, as an ``argument OPTION``
    message; None if it can."""
    if os.path.exists(path) and not os.path.isdir(path):
        return f"argument {option}: '{path}' is a file, expected a directory"
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return f"argument {option}: '{existing}' is a file, so '{path}' cannot be created"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"argument {option}: '{existing}' is not writable"
    return None


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what was kept (the message of the one-line note)."""


def _kept(out: str, study) -> str:
    """``"N of M networks kept in OUT"`` from the chunk file names (no chunk is read)."""
    import glob

    done = 0
    for path in glob.glob(os.path.join(out, "chunks", "g*_*_*.npz")):
        try:
            done += int(os.path.basename(path)[:-4].rsplit("_", 1)[1])
        except ValueError:
            pass
    return f"{min(done, study.n_networks)} of {study.n_networks} networks kept in '{out}'"


def _write_failure(error: OSError, out: str) -> str:
    """One line for a file-system failure during a run (full disk, permissions); a
    :class:`jaxsym.engine.store.RunWriteError` already names the free space."""
    import shutil

    from jaxsym.engine import store

    if error.strerror:
        where = f" '{error.filename}'" if error.filename else ""
        message = f"cannot write{where}: {error.strerror}"
    else:
        message = str(error).splitlines()[0]
    if not isinstance(error, store.RunWriteError):
        try:
            message += f" ({shutil.disk_usage(out).free / 2**20:.0f} MiB free)"
        except OSError:
            pass
    return message + "; the finished chunks are kept: fix it and re-run the same command"


def _execute(planned, out: str, interrupted: str = "", **run_options):
    """:func:`jaxsym.api.run` of a plan; ``(dataset, None)`` or ``(None, exit status)`` after
    printing the one-line error. Ctrl-C raises :class:`Interrupted` saying what was kept
    (``interrupted`` is appended)."""
    from jaxsym.engine import store

    try:
        return api.run(planned, out=out, **run_options), None
    except store.RunDirError as error:
        return None, _fail(str(error))
    except OSError as error:
        return None, _fail(_write_failure(error, out))
    except KeyboardInterrupt:
        raise Interrupted(_kept(out, planned.study) + interrupted) from None


def _distributed_problem(args) -> str | None:
    """What is wrong with the --distributed options, or None."""
    manual = {"--coordinator": args.coordinator, "--num-processes": args.num_processes,
              "--process-id": args.process_id}
    given = [name for name, value in manual.items() if value is not None]
    if given and not args.distributed:
        return f"argument {given[0]}: only with --distributed"
    if given and len(given) < 3:
        missing = [name for name in manual if name not in given]
        return (f"argument {missing[0]}: --coordinator, --num-processes and --process-id go "
                "together (or give none and let JAX detect the cluster)")
    if given and not args.process_id < args.num_processes:
        return (f"argument --process-id: must be < --num-processes = {args.num_processes}, "
                f"got {args.process_id}")
    return None


def _join_cluster(args):
    """``((process index, count), None)``, after jax.distributed.initialize() with
    --distributed, or ``(None, the one-line problem)``."""
    import jax

    if not args.distributed:
        return (0, 1), None
    try:
        jax.distributed.initialize(coordinator_address=args.coordinator,
                                   num_processes=args.num_processes, process_id=args.process_id)
    except (ValueError, RuntimeError) as error:
        return None, ("argument --distributed: no cluster to join (JAX found no SLURM, Open MPI "
                      "or TPU environment; give --coordinator, --num-processes and "
                      f"--process-id): {str(error).splitlines()[0]}")
    return (jax.process_index(), jax.process_count()), None


def _plan_run(args):
    """``(plan, out, None)`` of ``jaxsym run``'s arguments, or ``(None, None, problem)``: every
    check that can refuse the run before anything is written, in order."""
    overrides = dict(args.set)
    for option, key in (("seeds", "seeds.count"), ("steps", "train.steps"),
                        ("dtype", "train.dtype")):
        if getattr(args, option) is not None:
            overrides[key] = getattr(args, option)
    try:
        planned = api.plan(api.study(Path(args.config), args.preset, overrides), args.chunk_size)
    except config.ConfigError as error:
        return None, None, str(error)
    out = args.out or os.path.join("runs", planned.study.name)
    problem = (_dir_problem(out, "--out") or _distributed_problem(args)
               or api.resource_problem(planned))
    if problem:
        return None, None, problem
    cost, study = api.estimate(planned), planned.study
    if not args.yes and (cost["networks"] > YES_NETWORKS or cost["seconds"] > 3600 * YES_HOURS):
        return None, None, (
            f"study '{study.name}' has {cost['networks']:,} networks and would take about "
            f"{cost['seconds'] / 3600:,.0f} hours (rough estimate for a 2-core CPU); check the "
            "grid and seeds, or pass --yes to start it")
    return planned, out, None


def _run(args) -> int:
    use_all_cores()  # before anything imports JAX
    planned, out, problem = _plan_run(args)
    if problem:
        return _fail(problem)
    from jaxsym.engine.run import RunOptions

    processes, problem = _join_cluster(args)
    if problem:
        return _fail(problem)
    started = time.perf_counter()
    options = RunOptions(strategy=args.strategy, map_batch=args.map_batch,
                         process_index=processes[0], process_count=processes[1])
    dataset, status = _execute(planned, out, options=options, force=args.force,
                               wait=args.wait, progress=not args.no_progress)
    if status is not None:
        return status
    study, wall = planned.study, time.perf_counter() - started
    if dataset is None:
        print(f"process {processes[0]}/{processes[1]}: share of study {study.name} written to "
              f"{out}/chunks in {wall:.1f} s; process 0 merges results.nc")
        return 0
    trained = dataset.attrs["networks_trained_now"]
    rate = f"{trained / wall:.1f} networks/s" if trained else "all chunks already done (resumed)"
    grid = " x ".join(f"{a}[{n}]" for a, n in zip(study.grid_axes, study.grid_shape)) or "1 point"
    print(f"study {study.name}: grid {grid} = {study.n_grid_points} points x "
          f"{study.get('seeds.count')} seeds"
          + (f" x {study.get('task.draws')} data draws" if study.get("task.draws") > 1 else "")
          + f" = {study.n_networks} networks; trained {trained} "
          f"in {wall:.1f} s ({rate}) on {dataset.attrs['n_devices']} "
          f"{dataset.attrs['backend']} device(s); results: {os.path.join(out, 'results.nc')}")
    return 0


def _dry_run(plans, args) -> int:
    """``jaxsym study --dry-run``: each experiment's size, rough time and run directory."""
    total_networks, total_seconds = 0, 0.0
    for planned, name in plans:
        cost = api.estimate(planned)
        total_networks += cost["networks"]
        total_seconds += cost["seconds"]
        print(f"{name.removesuffix('-' + args.preset)}: {cost['networks']} networks, about "
              f"{cost['seconds'] / 60:.1f} min -> {os.path.join(args.runs, name)}")
    print(f"study ({args.preset}, dry run): {len(plans)} experiments, {total_networks} "
          f"networks, about {total_seconds / 60:.0f} min on a 2-core CPU (rough); report: "
          f"{os.path.join(args.figures, 'REPORT.md')}; nothing was written")
    return 0


def _study(args) -> int:
    use_all_cores()
    if args.figures is None:
        args.figures = STUDY_FIGURES[args.preset]
    problem = _dir_problem(args.runs, "--runs") or _dir_problem(args.figures, "--figures")
    if problem:
        return _fail(problem)
    try:
        plans = api.experiment_plans(args.preset)
    except config.ConfigError as error:
        return _fail(str(error))
    problem = next(filter(None, (api.resource_problem(planned) for planned, _ in plans)), None)
    if problem:
        return _fail(problem)
    if args.dry_run:
        return _dry_run(plans, args)
    started, run_dirs = time.perf_counter(), []
    for planned, name in plans:
        out = os.path.join(args.runs, name)
        dataset, status = _execute(
            planned, out, f"; {len(run_dirs)} of {len(plans)} studies finished",
            progress=not args.no_progress, wait=args.wait)
        if status is not None:
            return status
        run_dirs.append(out)
        print(f"{planned.study.name}: {planned.study.n_networks} networks, "
              f"{dataset.attrs['wall_time_s']:.0f} s -> {out}/results.nc", flush=True)
        release_compiled()
    path = api.report(run_dirs, args.figures)
    target = os.path.abspath(args.figures)
    where = ("a tracked report of this checkout" if target == CHECKOUT_FIGURES
             or target.startswith(CHECKOUT_FIGURES + os.sep) else "")
    print(f"study ({args.preset}) done in {time.perf_counter() - started:.0f} s; "
          f"report: {path}" + (f" ({where})" if where else ""))
    return 0


def _report(args) -> int:
    from jaxsym.engine import store

    missing = [d for d in args.run_dirs if not os.path.exists(os.path.join(d, "results.nc"))]
    if missing:
        return _fail(f"no results.nc in run directory '{missing[0]}'; run `jaxsym run` first")
    if args.figures is None and len(args.run_dirs) > 1:
        return _fail("argument --out: required with several run directories (the report of "
                     "one run directory goes to RUN_DIR/report)")
    out = args.figures or os.path.join(args.run_dirs[0], "report")
    problem = _dir_problem(out, "--out/--figures")
    if problem:
        return _fail(problem)
    try:
        print(f"report: {api.report(args.run_dirs, out)}")
    except store.CorruptFileError as error:
        return _fail(str(error))
    except ValueError as error:  # a section that cannot read these results (nothing written)
        return _fail(str(error).splitlines()[0])
    return 0


def _theory(args) -> int:
    from jaxsym.theory import meanfield

    if args.theory_command == "meanfield":
        result = meanfield.mean_field(args.activation, args.sigma_w2, args.sigma_b2)
        print(f"{args.activation}, sigma_w^2 = {args.sigma_w2:g}, sigma_b^2 = "
              f"{args.sigma_b2:g}: " + ", ".join(
                  f"{k} = {float(v):.6g}" for k, v in result._asdict().items()))
    else:
        value = float(meanfield.critical_sigma_w2(args.activation, args.sigma_b2))
        print(f"{args.activation}, sigma_b^2 = {args.sigma_b2:g}: critical sigma_w^2 = "
              f"{value:.6g} (chi_1 = 1)")
    return 0


COMMANDS = {"run": _run, "study": _study, "report": _report, "theory": _theory}
