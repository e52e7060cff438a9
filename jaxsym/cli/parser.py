"""The ``jaxsym`` command's argument parser: one small function per sub-command.

Contract: :func:`build_parser` returns an argparse parser whose errors are ONE line
``jaxsym: error: ...`` with exit status 2; every option with a default shows it in its help.
"""

from __future__ import annotations

import argparse

import jaxsym
from jaxsym.study.experiments import PRESETS, STUDY_FIGURES

__all__ = ["build_parser", "YES_NETWORKS", "YES_HOURS", "DESCRIPTION"]

#: the command's one-line description (``jaxsym --help``)
DESCRIPTION = "The ``jaxsym`` command line (also ``python -m jaxsym``)."

#: `jaxsym run` asks for --yes above this many networks or this many estimated hours
YES_NETWORKS, YES_HOURS = 1_000_000, 24.0


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit status 2), as the project promises."""

    def error(self, message):  # noqa: D102 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def _number_type(convert, check, expected: str):
    """An argparse type: ``convert(text)``, refused with ``expected`` unless ``check(value)``."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not check(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_nonnegative_float = _number_type(float, lambda v: 0 <= v < float("inf"), "a finite number >= 0")
_positive_int = _number_type(int, lambda v: v >= 1, "an integer >= 1")


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


def _add_run(sub) -> None:
    run = sub.add_parser(
        "run", help="train every network of a study config into a run directory",
        description="Train (grid points x seeds) networks of a TOML study config (a path, or "
                    "the name of a bundled experiment, e.g. example) into a run directory: "
                    "validated before anything is written, resumable, locked against a "
                    "second process, every chunk checksummed.")
    add = run.add_argument
    add("config", help="study config (TOML), e.g. experiments/example.toml, or a bundled "
                       "experiment's name (e.g. example)")
    add("--out", help="run directory (default: runs/<study name>)")
    add("--preset", help="apply the config's [preset.NAME] table (e.g. quick, full)")
    add("--seeds", type=_positive_int, help="override seeds.count")
    add("--steps", type=_positive_int, help="override train.steps")
    add("--chunk-size", type=_positive_int, default=256,
        help="networks per compiled call (default %(default)s)")
    add("--dtype", choices=("float32", "float64", "bfloat16"), help="override train.dtype")
    add("--set", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
        help="override any config key, e.g. --set train.learning_rate=0.05")
    add("--strategy", choices=("auto", "map", "vmap"), default="auto",
        help="batching: map (sequential per device, CPU) or vmap (GPU); default %(default)s: "
             "the faster for this device")
    add("--map-batch", type=_positive_int, metavar="K",
        help="networks per lax.map step under the map strategy (default: the engine's choice "
             "per width, see jaxsym.engine.runner.nets_per_map_step)")
    add("--force", action="store_true",
        help="overwrite a run directory that holds a different study")
    add("--yes", action="store_true",
        help=f"start a study above {YES_NETWORKS:,} networks or an estimated {YES_HOURS:g} "
             "hours without asking")
    add("--wait", action="store_true",
        help="if another process is using the run directory, wait for it to finish (default: "
             "refuse, naming the process)")
    add("--no-progress", action="store_true", help="hide the progress bar")
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


def _add_study(sub) -> None:
    study = sub.add_parser(
        "study", help="run the bundled experiments and write the report (the main job)",
        description="Run every bundled experiment (experiments/*.toml) with a preset, then "
                    "write the figures and REPORT.md.")
    study.add_argument("--preset", choices=tuple(STUDY_FIGURES), default="quick",
                       help="; ".join(f"{name}: {text}" for name, text in PRESETS.items())
                       + "; default %(default)s")
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


def _add_report(sub) -> None:
    report = sub.add_parser(
        "report", help="figures and REPORT.md from run directories",
        description="Write REPORT.md and its figures for finished run directories: each run "
                    "gets the section its config's [report] section names (generic: P(broken) "
                    "and the times to break and to converge at every grid point, with CIs).")
    report.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    report.add_argument("--out", "--figures", dest="figures", metavar="DIR",
                        help="output directory (default: RUN_DIR/report for one run directory; "
                             "required for several)")


def _add_theory(sub) -> None:
    from jaxsym.core.activations import activation_names

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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``jaxsym`` command."""
    parser = _Parser(prog="jaxsym", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"jaxsym {jaxsym.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_add_run, _add_study, _add_report, _add_theory):
        add(sub)
    return parser
