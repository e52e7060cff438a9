"""The ``jaxsym`` command line (also ``python -m jaxsym``).

Sub-commands:
  study  the main job: run the bundled experiments (preset quick or full), then the report.
  run    train every network of a study config (TOML) into a run directory (resumable).
  report figures and figures/REPORT.md from finished run directories.
  theory mean-field signal propagation: `theory meanfield` (q*, c*, chi_1, depth scales) and
         `theory critical` (the sigma_w^2 with chi_1 = 1).

On a CPU, ``jaxsym run`` exposes one XLA device per core (unless XLA_FLAGS already sets
``--xla_force_host_platform_device_count``), so the sweep uses every core without user flags.
Every study runs through :mod:`jaxsym.api` (validate -> plan -> resource check -> engine); this
module parses arguments and prints.

Bad input prints ONE line ``jaxsym: error: ...`` naming the option and the allowed values, and
exits with status 2 (nothing is written).
"""

from __future__ import annotations

import os
import sys

from jaxsym.cli.commands import COMMANDS, Interrupted
from jaxsym.cli.parser import YES_HOURS, YES_NETWORKS, build_parser

__all__ = ["main", "entry", "build_parser", "YES_NETWORKS", "YES_HOURS"]


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):
        parser.print_help()  # no command: usage and the commands, not an error
        return 0
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt as interrupt:
        if args.command not in ("run", "study"):
            raise
        kept = str(interrupt) if isinstance(interrupt, Interrupted) else \
            "the finished chunks are kept"
        print(f"jaxsym: interrupted; {kept}; re-run the same command to resume",
              file=sys.stderr)
        return 130


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
