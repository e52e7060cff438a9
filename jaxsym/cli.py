"""The ``jaxsym`` command line (also ``python -m jaxsym``).

Sub-commands:
  study  the main job: run the bundled experiments (preset quick or full), then the report.
  run    train every network of a study config (TOML) into a run directory (resumable).
  report figures and figures/REPORT.md from finished run directories.
  theory mean-field signal propagation: `theory meanfield` (q*, c*, chi_1, depth scales) and
         `theory critical` (the sigma_w^2 with chi_1 = 1).
  demo   a small float64 demonstration: bias-only initialisation at a few sigma_b, many seeds.

On a CPU, ``jaxsym run`` exposes one XLA device per core (unless XLA_FLAGS already sets
``--xla_force_host_platform_device_count``), so the sweep uses every core without user flags.

Bad input prints ONE line ``jaxsym: error: ...`` naming the option and the allowed values, and
exits with status 2 (nothing is written).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jaxsym
from jaxsym.study import config

__all__ = ["main", "build_parser", "YES_NETWORKS", "YES_HOURS"]

#: `jaxsym run` asks for --yes above this many networks or this many estimated hours
YES_NETWORKS, YES_HOURS = 1_000_000, 24.0


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit status 2), as the project promises."""

    def error(self, message):  # noqa: D102 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_float_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated non-negative numbers, got {text!r}") from None
    if any(not (v >= 0 and v < float("inf")) for v in values):
        raise argparse.ArgumentTypeError(
            f"scales must be finite and >= 0, got {text!r}")
    return values


def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0 <= value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or "." not in key:
        raise argparse.ArgumentTypeError(f"expected section.key=value, got {text!r}")
    return key.strip(), value.strip()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``jaxsym`` command."""
    from jaxsym.core.activations import activation_names

    parser = _Parser(prog="jaxsym", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"jaxsym {jaxsym.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser(
        "run", help="train every network of a study config into a run directory",
        description="Train (grid points x seeds) networks of a TOML study config (a path, or "
                    "the name of a bundled experiment, e.g. example) into a run directory: "
                    "validated before anything is written, resumable, locked against a "
                    "second process, every chunk checksummed.")
    run.add_argument("config", help="study config (TOML), e.g. experiments/example.toml, or "
                                    "a bundled experiment's name (e.g. example)")
    run.add_argument("--out", help="run directory (default: runs/<study name>)")
    run.add_argument("--preset", help="apply the config's [preset.NAME] table (e.g. quick, full)")
    run.add_argument("--seeds", type=_positive_int, help="override seeds.count")
    run.add_argument("--steps", type=_positive_int, help="override train.steps")
    run.add_argument("--chunk-size", type=_positive_int, default=256,
                     help="networks per compiled call (default %(default)s)")
    run.add_argument("--dtype", choices=("float32", "float64", "bfloat16"),
                     help="override train.dtype")
    run.add_argument("--set", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                     help="override any config key, e.g. --set train.learning_rate=0.05")
    run.add_argument("--strategy", choices=("auto", "map", "vmap"), default="auto",
                     help="batching: map (sequential per device, CPU) or vmap (GPU); default "
                          "%(default)s: the faster for this device")
    run.add_argument("--map-batch", type=_positive_int, metavar="K",
                     help="networks per lax.map step under the map strategy (default: the "
                          "engine's choice per width, see sweep.nets_per_map_step)")
    run.add_argument("--force", action="store_true",
                     help="overwrite a run directory that holds a different study")
    run.add_argument("--yes", action="store_true",
                     help=f"start a study above {YES_NETWORKS:,} networks or an estimated "
                          f"{YES_HOURS:g} hours without asking")
    run.add_argument("--wait", action="store_true",
                     help="if another process is using the run directory, wait for it to finish "
                          "(default: refuse, naming the process)")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    dist = run.add_argument_group(
        "many processes / hosts",
        "With --distributed, each process calls jax.distributed.initialize() (which detects "
        "SLURM, Open MPI and TPU pods by itself, or takes the three options below), trains its "
        "share of the chunks on its own devices into the shared --out directory, and process 0 "
        "merges results.nc when every chunk is there.")
    dist.add_argument("--distributed", action="store_true",
                      help="run as one of several processes (see above)")
    dist.add_argument("--coordinator", metavar="HOST:PORT",
                      help="address of process 0's coordination service")
    dist.add_argument("--num-processes", type=_positive_int, metavar="N",
                      help="number of processes")
    dist.add_argument("--process-id", type=_nonnegative_int, metavar="I",
                      help="this process's id in [0, N)")

    study = sub.add_parser(
        "study", help="run the bundled experiments and write the report (the main job)",
        description="Run every bundled experiment (experiments/*.toml) with a preset, then "
                    "write the figures and REPORT.md.")
    study.add_argument("--preset", choices=tuple(STUDY_FIGURES), default="quick",
                       help="quick: minutes on a 2-core CPU; full: the committed figures/ "
                            "(>= 128 seeds on the bias-only grids; under 90 min on 2 cores); "
                            "large: >= 512 seeds and every variant (a GPU or a day of CPU); "
                            "default %(default)s")
    study.add_argument("--runs", default="runs",
                       help="parent of the run directories (default: %(default)s/)")
    study.add_argument("--figures", default=None,
                       help="where the figures and REPORT.md go (default: figures/quick/, "
                            "figures/ or figures/large/ by preset; in a source checkout "
                            "figures/ is the tracked full-preset report; rewritten only when "
                            "its numbers change)")
    study.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    study.add_argument("--dry-run", action="store_true",
                       help="validate every experiment and print the plan (networks, estimated "
                            "time, run directories); train and write nothing")
    study.add_argument("--wait", action="store_true",
                       help="wait for run directories another process is using (default: "
                            "refuse)")

    report = sub.add_parser(
        "report", help="figures and REPORT.md from run directories",
        description="Write REPORT.md and its figures for finished run directories: the bundled "
                    "experiments get their dedicated sections, any other study P(broken) and "
                    "the times to break and to converge at every grid point, with CIs.")
    report.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    report.add_argument("--out", "--figures", dest="figures", metavar="DIR",
                        help="output directory (default: RUN_DIR/report for one run directory; "
                             "required for several)")

    theory = sub.add_parser("theory", help="mean-field theory (NumPy, no training)",
                            description="Mean-field signal propagation of deep random networks "
                                        "(NumPy, no training).")
    theory_sub = theory.add_subparsers(dest="theory_command", required=True, parser_class=_Parser)
    meanfield = theory_sub.add_parser(
        "meanfield", help="q*, c*, chi_1, xi_q, xi_c",
        description="Fixed points q*, c*, the slope chi_1 and the depth scales xi_q, xi_c.")
    critical = theory_sub.add_parser(
        "critical", help="critical sigma_w^2 (chi_1 = 1)",
        description="The sigma_w^2 at which chi_1 = 1 (the edge of chaos) for a sigma_b^2.")
    for p in (meanfield, critical):
        p.add_argument("--activation", default="tanh", choices=activation_names(), metavar="NAME",
                       help="activation (%(choices)s; default %(default)s)")
        p.add_argument("--sigma-b2", type=_nonnegative_float, default=0.05,
                       help="bias variance sigma_b^2 (default %(default)s)")
    meanfield.add_argument("--sigma-w2", type=_nonnegative_float, default=1.5,
                           help="weight variance sigma_w^2 (default %(default)s)")

    demo = sub.add_parser(
        "demo", help="bias-only initialisation at a few sigma_b, many seeds (float64)",
        description="Train small teacher-student networks whose hidden weights are all equal "
                    "and whose biases are N(0, sigma_b^2); report how often symmetry breaks.")
    demo.add_argument("--activation", default="tanh", choices=activation_names(),
                      metavar="NAME", help="hidden activation (%(choices)s; default "
                                           "%(default)s)")
    demo.add_argument("--sigma-b", type=_positive_float_list, default=[0.0, 1e-8, 1e-4, 1e-1],
                      metavar="S1,S2,...", help="bias-init standard deviations (default "
                                                "0,1e-08,0.0001,0.1)")
    demo.add_argument("--weight-value", type=float, default=None, metavar="W",
                      help="the constant hidden weight (default 1/sqrt(fan_in))")
    demo.add_argument("--seeds", type=_positive_int, default=32,
                      help="networks per sigma_b (default %(default)s)")
    demo.add_argument("--steps", type=_positive_int, default=3000,
                      help="SGD steps (default %(default)s)")
    return parser


def _use_all_cores() -> None:
    """One XLA CPU device per core, unless the user already chose (must run before JAX starts)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags and "jax" not in sys.modules:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={cores}".strip()


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


class _Interrupted(KeyboardInterrupt):
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
    """One line for a file-system failure during a run (full disk, permissions)."""
    import shutil

    if error.strerror:
        where = f" '{error.filename}'" if error.filename else ""
        message = f"cannot write{where}: {error.strerror}"
    else:
        message = str(error).splitlines()[0]
    try:
        free = shutil.disk_usage(out).free / 2**20
        message += "" if "free on" in message else f" ({free:.0f} MiB free)"
    except OSError:
        pass
    return message + "; the finished chunks are kept: fix it and re-run the same command"


def _task_error(study):
    """``(None, the first draw's task)``, or ``(one-line message, None)`` when a data draw's
    task cannot be built (:func:`jaxsym.study.config.build_task`)."""
    try:
        return None, config.build_task(study)
    except config.ConfigError as error:
        return str(error), None


def _run(args) -> int:
    from jaxsym.engine import store

    overrides = dict(args.set)
    for option, key in (("seeds", "seeds.count"), ("steps", "train.steps"),
                        ("dtype", "train.dtype")):
        if getattr(args, option) is not None:
            overrides[key] = getattr(args, option)
    try:
        study = config.apply_overrides(config.load_study(args.config, preset=args.preset),
                                       overrides)
    except config.ConfigError as error:
        return _fail(str(error))
    problem, task = _task_error(study)
    if problem:
        return _fail(problem)
    out = args.out or os.path.join("runs", study.name)
    problem = _dir_problem(out, "--out")
    if problem:
        return _fail(problem)
    manual = {"--coordinator": args.coordinator, "--num-processes": args.num_processes,
              "--process-id": args.process_id}
    given = [name for name, value in manual.items() if value is not None]
    if given and not args.distributed:
        return _fail(f"argument {given[0]}: only with --distributed")
    if given and len(given) < 3:
        missing = [name for name in manual if name not in given]
        return _fail(f"argument {missing[0]}: --coordinator, --num-processes and --process-id "
                     "go together (or give none and let JAX detect the cluster)")
    if given and not args.process_id < args.num_processes:
        return _fail(f"argument --process-id: must be < --num-processes = {args.num_processes}, "
                     f"got {args.process_id}")
    _use_all_cores()
    import jax

    from jaxsym.engine import sweep

    problem = sweep.check_resources(study, task)
    if problem:
        return _fail(problem)
    cost = sweep.resource_estimate(study, task)
    if not args.yes and (cost["networks"] > YES_NETWORKS or cost["seconds"] > 3600 * YES_HOURS):
        return _fail(f"study '{study.name}' has {cost['networks']:,} networks and would take "
                     f"about {cost['seconds'] / 3600:,.0f} hours (rough estimate for a 2-core "
                     f"CPU); check the grid and seeds, or pass --yes to start it")
    process_index, process_count = 0, 1
    if args.distributed:
        try:
            jax.distributed.initialize(coordinator_address=args.coordinator,
                                       num_processes=args.num_processes,
                                       process_id=args.process_id)
        except (ValueError, RuntimeError) as error:
            return _fail("argument --distributed: no cluster to join (JAX found no SLURM, Open "
                         "MPI or TPU environment; give --coordinator, --num-processes and "
                         f"--process-id): {str(error).splitlines()[0]}")
        process_index, process_count = jax.process_index(), jax.process_count()
    started = time.perf_counter()
    try:
        dataset = sweep.run_study(study, out, chunk_size=args.chunk_size, force=args.force,
                                  map_batch=args.map_batch, wait=args.wait,
                                  strategy=args.strategy, progress=not args.no_progress,
                                  process_index=process_index, process_count=process_count)
    except store.RunDirError as error:
        return _fail(str(error))
    except OSError as error:
        return _fail(_write_failure(error, out))
    except KeyboardInterrupt:
        raise _Interrupted(_kept(out, study)) from None
    wall = time.perf_counter() - started
    if dataset is None:
        print(f"process {process_index}/{process_count}: share of study {study.name} written to "
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


#: the experiments ``jaxsym study`` runs, in order: (file stem in EXPERIMENTS_DIR, overrides,
#: presets that include it). quick: minutes on a 2-core CPU (the README's first command);
#: full: the committed figures/ (< 90 min on 2 cores); large: GPU scale (>= 512 seeds on the
#: bias-only grids, every width and depth variant; figures/predicted/ came from its theory runs)
STUDY_EXPERIMENTS = (("bias_only_regression", {}, ("quick", "full", "large")),
                     ("bias_only_classification", {}, ("quick", "full", "large")),
                     ("bias_only_mnist1d", {}, ("full", "large")),
                     ("zero_init", {}, ("full", "large")),
                     ("zero_init", {"train.batch_size": 0}, ("large",)),
                     ("staircase", {}, ("quick", "full", "large")),
                     ("escape", {"train.dtype": "float64"}, ("quick", "full", "large")),
                     ("escape", {"train.dtype": "float32"}, ("quick", "full", "large")),
                     ("escape", {"train.dtype": "bfloat16"}, ("quick", "full", "large")),
                     ("noise_dose", {}, ("quick", "full", "large")),
                     ("saddle_slope", {}, ("quick", "full", "large")),
                     # width scaling of the saddle: lr grows with m (the slope ~ m / lr) up to
                     # 0.2, where the symmetric mode of m = 32 is still stable
                     *(("saddle_slope", {"model.width": m, "train.learning_rate": lr,
                                         "train.steps": steps}, ("large",))
                       for m, lr, steps in ((2, 0.025, 6000), (4, 0.05, 6000),
                                            (16, 0.2, 6000), (32, 0.2, 8000))),
                     # the theory's checks: quick keeps one of each kind, full adds the other
                     # classification tasks; the large preset's runs are in figures/predicted/
                     ("predict", {}, ("quick", "full", "large")),
                     ("predict", {"model.depth": 3}, ("large",)),
                     ("predict_circles", {}, ("quick", "full", "large")),
                     ("classify", {}, ("quick", "full", "large")),
                     ("classify", {"task.name": "circles"}, ("full", "large")),
                     ("classify", {"task.name": "teacher_student", "grid.loss": ["mse"]},
                      ("full", "large")),
                     *(("phase_diagram", {"model.depth": d},
                        ("quick", "full", "large") if d in (4, 8, 16, 24, 32)
                        else ("full", "large"))
                       for d in (2, 4, 8, 12, 16, 24, 32, 48, 64)))
#: where ``jaxsym study`` writes its report by default, per preset: the main job (quick) never
#: overwrites the committed full-preset report in figures/
STUDY_FIGURES = {"quick": os.path.join("figures", "quick"), "full": "figures",
                 "large": os.path.join("figures", "large")}
#: the bundled experiments (package data; ``experiments/`` in a source checkout links here)
EXPERIMENTS_DIR = str(config.BUNDLED_DIR)
#: the committed report of a source checkout (absent in an installed wheel)
CHECKOUT_FIGURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "figures")


def _study(args) -> int:
    if args.figures is None:
        args.figures = STUDY_FIGURES[args.preset]
    for path, option in ((args.runs, "--runs"), (args.figures, "--figures")):
        problem = _dir_problem(path, option)
        if problem:
            return _fail(problem)
    studies = []
    for name, overrides, presets in STUDY_EXPERIMENTS:
        if args.preset not in presets:
            continue
        try:
            study = config.load_study(os.path.join(EXPERIMENTS_DIR, f"{name}.toml"),
                                      preset=args.preset)
            studies.append((config.apply_overrides(study, overrides),
                            "".join(f"-{'+'.join(map(str, v)) if isinstance(v, list) else v}"
                                    for v in overrides.values())))
        except config.ConfigError as error:
            return _fail(str(error))
        problem, task = _task_error(studies[-1][0])
        if problem:
            return _fail(problem)
        studies[-1] = (*studies[-1], task)
    _use_all_cores()
    from jaxsym import reporting as report
    from jaxsym.engine import store, sweep

    for study, _, task in studies:
        problem = sweep.check_resources(study, task)
        if problem:
            return _fail(problem)
    if args.dry_run:
        total_networks, total_seconds = 0, 0.0
        for study, suffix, task in studies:
            cost = sweep.resource_estimate(study, task)
            total_networks += cost["networks"]
            total_seconds += cost["seconds"]
            print(f"{study.name}{suffix}: {cost['networks']} networks, about "
                  f"{cost['seconds'] / 60:.1f} min -> "
                  f"{os.path.join(args.runs, f'{study.name}{suffix}-{args.preset}')}")
        print(f"study ({args.preset}, dry run): {len(studies)} experiments, {total_networks} "
              f"networks, about {total_seconds / 60:.0f} min on a 2-core CPU (rough); report: "
              f"{os.path.join(args.figures, 'REPORT.md')}; nothing was written")
        return 0
    started = time.perf_counter()
    run_dirs = []
    for study, suffix, _ in studies:
        out = os.path.join(args.runs, f"{study.name}{suffix}-{args.preset}")
        try:
            dataset = sweep.run_study(study, out, progress=not args.no_progress, wait=args.wait)
        except store.RunDirError as error:
            return _fail(str(error))
        except OSError as error:
            return _fail(_write_failure(error, out))
        except KeyboardInterrupt:
            raise _Interrupted(f"{_kept(out, study)}; {len(run_dirs)} of {len(studies)} "
                               "studies finished") from None
        run_dirs.append(out)
        print(f"{study.name}: {study.n_networks} networks, "
              f"{dataset.attrs['wall_time_s']:.0f} s -> {out}/results.nc", flush=True)
    path = report.write_report(run_dirs, args.figures)
    target = os.path.abspath(args.figures)
    where = ("a tracked report of this checkout" if target == CHECKOUT_FIGURES
             or target.startswith(CHECKOUT_FIGURES + os.sep) else "")
    print(f"study ({args.preset}) done in {time.perf_counter() - started:.0f} s; "
          f"report: {path}" + (f" ({where})" if where else ""))
    return 0


def _report(args) -> int:
    from jaxsym import reporting as report
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
        print(f"report: {report.write_report(args.run_dirs, out)}")
    except store.CorruptFileError as error:
        return _fail(str(error))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):
        parser.print_help()  # no command: usage and the commands, not an error
        return 0
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "study":
            return _study(args)
    except KeyboardInterrupt as interrupt:
        kept = str(interrupt) if isinstance(interrupt, _Interrupted) else \
            "the finished chunks are kept"
        print(f"jaxsym: interrupted; {kept}; re-run the same command to resume",
              file=sys.stderr)
        return 130
    if args.command == "report":
        return _report(args)
    if args.command == "theory":
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
    if args.command == "demo":
        from jaxsym import demo

        print(demo.format_table(demo.run_demo(
            activation=args.activation, sigma_bs=args.sigma_b, weight_value=args.weight_value,
            seeds=args.seeds, steps=args.steps)))
    return 0


def entry() -> None:
    """The console script: :func:`main`, and on Ctrl-C (status 130) an immediate exit, since
    an interpreter shutting down with XLA computations in flight can crash."""
    code = main()
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
