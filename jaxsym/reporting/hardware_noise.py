"""The hardware-noise section: identical units under the exact arithmetic and under the UNSAFE
plain kernel, per training dtype: when twins first differ, P(broken), the time to break and the
effective sigma_b of the kernel's rounding.

Contract: :func:`render` ``(numbers, figures_dir) -> list of markdown lines`` from
:func:`jaxsym.analysis.hardware_noise.analyse`; draws ``hardware_noise``.
"""

from __future__ import annotations

import math

from jaxsym.analysis import stats
from jaxsym.analysis.common import unit_roundoff
from jaxsym.reporting.common import description, setup_table
from jaxsym.reporting.plotting import PALETTE, plt, save

__all__ = ["render"]


def _sigma(cell, interval: bool = True) -> str:
    """``"1.5e-11 [3e-13, 2e-10] (0.00026 u)"``; ``"< 3.8e-08 (< 0.64 u)"`` for a bound;
    ``interval`` False leaves out the bracket."""
    value = cell["sigma_eff"]
    if not math.isfinite(value):
        return "n/a"
    if cell["bound"]:
        return f"< {value:.1e} (< {cell['per_u']:.2g} u)"
    low, high = cell["sigma_interval"]
    span = ""
    if interval and math.isfinite(low):
        span = (f" [{f'{low:.0e}' if low > 0 else '?'}, "
                f"{f'{high:.0e}' if math.isfinite(high) else '?'}]")
    return f"{value:.1e}{span} ({cell['per_u']:.2g} u)"


def _table(runs) -> list[str]:
    replicas = any(c["replicas"][1] for r in runs for c in r["cells"])
    lines = ["| dtype | kernel | activation | twins differ (networks) | "
             + ("replicas differ (draws) | " if replicas else "") + "median first step "
             "with differing twins | P(broken) [95% CI] | median step to break | effective "
             "sigma_b (in unit roundoffs u) |", "|---|---|---|---|---|---|---|---|"
             + ("---|" if replicas else "")]
    for run in runs:
        budget = run["ds"].attrs["steps"]
        for c in run["cells"]:
            differ, draws = c["replicas"]
            lines.append(
                f"| {run['dtype']} | {c['kernel']} | {c['activation']} | {c['asymmetric']} of "
                f"{c['n']} | " + (f"{differ} of {draws} | " if replicas else "")
                + f"{stats.format_median(c['first'], budget)} | {c['k'] / c['n']:.2f} "
                f"[{c['low']:.2f}, {c['high']:.2f}] | "
                f"{stats.format_median(c['break'], budget)} | "
                f"{_sigma(c) if c['asymmetric'] or c['k'] else 'none (twins identical)'} |")
    return lines


def _summary(runs) -> str:
    """What the table says, sentence by sentence, from its numbers."""
    exact = [c for r in runs for c in r["cells"] if c["kernel"] == "exact"]
    n_exact = sum(c["n"] for c in exact)
    differ = sum(c["asymmetric"] for c in exact)
    parts = [f"Under the exact arithmetic twins differed in {differ} of {n_exact} networks "
             f"and {sum(c['k'] for c in exact)} broke: rounding alone never breaks identical "
             "units when every unit's arithmetic is the same."]
    for run in runs:
        plain = [c for c in run["cells"] if c["kernel"] == "plain"]
        if not plain:
            continue
        budget = run["ds"].attrs["steps"]
        text = (f"With the plain kernel in {run['dtype']} (u = "
                f"{unit_roundoff(run['dtype']):.1e}), twins differed in "
                f"{sum(c['asymmetric'] for c in plain)} of {sum(c['n'] for c in plain)} "
                f"networks and {sum(c['k'] for c in plain)} broke within {budget} steps")
        acts = [f"{c['activation']} acts like sigma_b {_sigma(c, False)}" for c in plain
                if math.isfinite(c["sigma_eff"]) and c["asymmetric"]]
        parts.append(text + (f"; read as an initial spread, {'; '.join(acts)}." if acts
                             else "."))
    return " ".join(parts)


def _figure(runs):
    plain = [(r, c) for r in runs for c in r["cells"] if c["kernel"] == "plain"]
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.4), sharey=True)
    for i, (run, c) in enumerate(plain):
        color = PALETTE[i % len(PALETTE)]
        label = f"{run['dtype']}, {c['activation']}"
        curves = c["curves"]
        axes[0].step(curves["step"], curves["asymmetric"], where="post", color=color,
                     label=label)
        axes[1].step(curves["break_step"], curves["broken"], where="post", color=color,
                     label=label)
    budget = max(int(run["ds"].attrs["steps"]) for run in runs)
    for ax in axes:
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlim(0, budget)
        ax.set_xlabel("step")
        ax.set_ylim(-0.03, 1.03)
    axes[0].set_ylabel("fraction of networks")
    axes[0].set_title("twins differ (unit spread > 0)", fontsize=9)
    axes[1].set_title("symmetry broken (s2/s1 > threshold)", fontsize=9)
    axes[0].legend(fontsize=7)
    fig.suptitle("Plain (unsafe) kernel, identical units at sigma_b = 0; the exact kernel "
                 "stays at 0 in both panels", fontsize=8.5)
    fig.tight_layout()
    return fig


def render(numbers, figures_dir) -> list[str]:
    """The section's markdown lines (and the ``hardware_noise`` figure)."""
    runs = numbers["runs"]
    if not runs:
        return []
    save(_figure(runs), figures_dir, "hardware_noise")
    lines = ["## Hardware noise as a dose: the plain kernel's rounding (sigma_b = 0)", "",
             description(runs[0]["ds"]), "", _summary(runs), "", *_table(runs), "",
             "Twins differ: some hidden layer's unit spread is > 0 at a checkpoint (any bit "
             "differs). Effective sigma_b: per network, the initial bias spread whose median "
             "break the linearised escape of the same network (its data draw) predicts at the "
             "step it broke; the table gives the median over the networks (Kaplan-Meier on "
             "log sigma, a network that does not break censored at its value at the budget) "
             "with its 95% interval where at least half break, else '<' and the median of the "
             "networks' values (readings and bounds: an upper bound). The kicks are sporadic, so one cell's "
             "readings spread over decades. "
             "Which products round a unit differently depends on the CPU's kernels, so the "
             "plain rows are a measurement of THIS machine (see the setup's machine row), not "
             "a property of the method; the exact rows hold on every kernel family "
             "(tests/test_exact_symmetry.py). Unlike the noise-dose section's emulated noise, "
             "the plain kernel's asymmetry is deterministic: on a CPU every seed of a data draw "
             "is a replica, so the networks here differ by their data draw (replicas differ: "
             "data draws whose seeds, run with the same init, data and arithmetic, end "
             "differently; shown with several seeds per draw, e.g. on a GPU, where "
             "non-deterministic reductions make them differ).", "",
             "![hardware noise](hardware_noise.png)", "", "### Setup", ""]
    for run in runs:
        lines += [f"{run['dtype']}:", "", setup_table(run["ds"]), ""]
    return lines
