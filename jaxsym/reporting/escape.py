"""The dtype-floor section: escape from the symmetric saddle in float64, float32 and
bfloat16, the floor sigma_b* each dtype's unit roundoff sets, and the log-law above it.

Contract: :func:`render` ``(numbers, figures_dir) -> list of markdown lines`` from
:func:`jaxsym.analysis.escape.analyse`; draws ``escape``.
"""

from __future__ import annotations

import textwrap

import numpy as np

from jaxsym.analysis import stats
from jaxsym.reporting.common import setup_table
from jaxsym.reporting.plotting import plt, save

__all__ = ["render"]


def _finding(above_u) -> str:
    return (
        "With exact symmetric arithmetic (jaxsym.core.dense), identical units (sigma_b = 0) never "
        "break, in any dtype: P(broken) = 0. A positive sigma_b far below the resolution of the "
        "pre-activations is absorbed: every unit computes the same z, the bias differences never "
        "reach the loss, and the network behaves exactly like sigma_b = 0. The floor sigma_b* "
        "(largest sigma_b that behaves like 0, every smaller one too) is set by the dtype's unit "
        "roundoff u; above it the time to break follows the log-law, fitted over the cells from "
        f"{above_u:g} u to 1e-2 with P(broken) >= 0.9 (a window fit; the log-law's asymptote "
        "is stated in the section 'The log-law slope from the Hessian'). Cells between the "
        f"floor and {above_u:g} u are not conclusions (the report's one rounding rule): there "
        "the initial asymmetry is partly a rounding residue of the non-symmetric arithmetic, "
        "which differs between CPUs (in float32 the 1e-9 and 1e-7 cells move with the kernels; "
        "benchmarks/cross_machine.py).")


def _escape_text(numbers) -> str:
    lines = ["| dtype | sigma_b | P(broken) [95% CI] | median step to break | median step to "
             "converge |", "|---|---|---|---|---|"]
    floors = ["| dtype | unit roundoff u | floor sigma_b* | sigma_b* / u | first sigma_b that "
              "breaks | log-law above the floor (steps/decade) |", "|---|---|---|---|---|---|"]
    for run in numbers["runs"]:
        budget, dtype = run["ds"].attrs["steps"], run["dtype"]
        for c in run["cells"]:
            lines.append(f"| {dtype} | {c['sigma_b']:.0e} | {c['k'] / c['n']:.2f} "
                         f"[{c['low']:.2f}, {c['high']:.2f}] "
                         f"| {stats.format_median(c['break'], budget)} | "
                         f"{stats.format_median(c['converge'], budget)} |")
        breaks = {c["sigma_b"]: c["break"].median for c in run["cells"]}
        floor, u, fit, above = run["floor"], run["u"], run["fit"], run["fit_sigmas"]
        slope = "n/a (fewer than 3 cells)"
        if fit is not None:
            slope = (f"{fit.b:.0f} [{fit.b_low:.0f}, {fit.b_high:.0f}] over "
                     f"[{above[0]:.0e}, {above[-1]:.0e}]")
        first = min((s for s in breaks if s > floor), default=float("nan"))
        floors.append(f"| {dtype} | {u:.1e} | {floor:.0e} | {floor / u:.2g} | {first:.0e} | "
                      f"{slope} |")
    return "\n\n".join([_finding(numbers["above_u"]), "\n".join(floors), "\n".join(lines)])


def fig_escape(runs):
    """Median unit spread and direction diversity (first hidden layer) vs step, one line per
    sigma_b; one column per dtype. Log-log axes: exponential growth shows as a steep rise whose
    onset moves right by a constant amount per decade of sigma_b."""
    fig, axes = plt.subplots(2, len(runs), figsize=(3.2 * len(runs) + 1, 5.6),
                             squeeze=False, sharex=True, sharey="row")
    for col, run in enumerate(runs):
        ds = run["ds"]
        steps = np.maximum(ds.step.values, 1)
        for i, (s, spread, diversity) in enumerate(run["curves"]):
            colour = plt.get_cmap("viridis")(i / max(ds.sizes["sigma_b"] - 1, 1))
            for row, curve in enumerate((spread, diversity)):
                axes[row, col].plot(steps, np.maximum(curve, 1e-18), color=colour,
                                    label=f"{s:.0e}")
        for row, label in enumerate(("unit spread (relative)", "direction diversity s2/s1")):
            ax = axes[row, col]
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_ylim(1e-18, 3)
            if col == 0:
                ax.set_ylabel(label)
        axes[0, col].set_title(f"{ds.attrs['dtype']}")
        axes[1, col].set_xlabel("training step (step 0 drawn at 1)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, title="sigma_b", loc="lower center",
               ncol=min(len(labels), 9), frameon=False, fontsize=7)
    fig.suptitle("\n".join(textwrap.wrap(
        f"Escape from the symmetric saddle: tanh teacher-student, constant W, biases "
        f"N(0, sigma_b^2); median over {runs[0]['ds'].sizes['seed']} seeds (values < 1e-18 "
        "drawn at 1e-18)", 110)), fontsize=8.5)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return fig


def render(numbers, figures_dir) -> list[str]:
    """The section's markdown lines (and the ``escape`` figure)."""
    save(fig_escape(numbers["runs"]), figures_dir, "escape")
    return ["## Escape from the symmetric saddle: dtype floors", "", _escape_text(numbers), "",
            "### Setup", "", setup_table(numbers["first"]), "", "![escape](escape.png)", ""]
