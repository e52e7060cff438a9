"""The ``jaxsym`` command line (also ``python -m jaxsym``).

Sub-commands:
  demo   a small float64 demonstration: bias-only initialisation at a few sigma_b, many seeds.

Bad input prints ONE line ``jaxsym: error: ...`` naming the option and the allowed values, and
exits with status 2 (nothing is written).
"""

from __future__ import annotations

import argparse
import sys

import jaxsym

__all__ = ["main", "build_parser"]


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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``jaxsym`` command."""
    from jaxsym.activations import activation_names

    parser = _Parser(prog="jaxsym", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"jaxsym {jaxsym.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = sub.add_parser(
        "demo", help="bias-only initialisation at a few sigma_b, many seeds (float64)",
        description="Train small teacher-student networks whose hidden weights are all equal "
                    "and whose biases are N(0, sigma_b^2); report how often symmetry breaks.")
    demo.add_argument("--activation", default="tanh", choices=activation_names(),
                      metavar="NAME", help="hidden activation (%(choices)s)")
    demo.add_argument("--sigma-b", type=_positive_float_list, default=[0.0, 1e-8, 1e-4, 1e-1],
                      metavar="S1,S2,...", help="bias-init standard deviations")
    demo.add_argument("--weight-value", type=float, default=None, metavar="W",
                      help="the constant hidden weight (default 1/sqrt(fan_in))")
    demo.add_argument("--seeds", type=_positive_int, default=32, help="networks per sigma_b")
    demo.add_argument("--steps", type=_positive_int, default=3000, help="SGD steps")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from jaxsym import demo

        print(demo.format_table(demo.run_demo(
            activation=args.activation, sigma_bs=args.sigma_b, weight_value=args.weight_value,
            seeds=args.seeds, steps=args.steps)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
