"""The section any study gets: its setup, a table of every grid point (P(broken), P(converged),
the times to break and to converge, with CIs) and an overview figure.

Contract: :func:`render` ``(numbers, figures_dir) -> list of markdown lines`` from
:func:`jaxsym.analysis.sections.analyse_generic` (one :func:`jaxsym.analysis.summary` per run);
draws ``overview_<study name>``. Needs no JAX (tested in a process without it).
"""

from __future__ import annotations

import itertools
import textwrap

import numpy as np

from jaxsym.analysis import stats
from jaxsym.reporting.common import description, setup_table
from jaxsym.reporting.plotting import PALETTE, plt, save, sigma_positions

__all__ = ["render", "overview_axes", "fig_overview"]

#: numeric grid axes, in the order the overview figure prefers for its x axis
NUMERIC_X = ("sigma_b", "noise", "weight_value", "W_std", "learning_rate", "eps",
             "weight_decay", "groups", "dropout", "label_noise")
#: the overview figure draws at most this many curves per panel
OVERVIEW_CURVES = 12


def _generic_text(ds, summary, stem) -> str:
    """Setup, a table of every grid point and the overview figure of any study."""
    dims = list(summary.p_broken_p.dims)
    budget = summary.attrs["budget"]
    head = "| " + " | ".join(dims) + (" | " if dims else "") + (
        "networks | P(broken) [95% CI] | median steps to break | P(converged) [95% CI] | "
        "median steps to converge |")
    lines = [head, "|" + "---|" * (len(dims) + 5)]
    flat = summary.stack(point=dims) if dims else summary.expand_dims("point")
    for i in range(flat.sizes["point"]):
        row = flat.isel(point=i)

        def p(prefix):
            return (f"{float(row[prefix + '_p']):.2f} [{float(row[prefix + '_low']):.2f}, "
                    f"{float(row[prefix + '_high']):.2f}]")

        def median(prefix):
            m = stats.MedianTime(float(row[prefix + "_median"]), float(row[prefix + "_low"]),
                                 float(row[prefix + "_high"]),
                                 bool(np.isfinite(float(row[prefix + "_median"]))),
                                 int(summary.n), int(row[prefix + "_n_events"]))
            return stats.format_median(m, budget)

        cells = [f"{v:g}" if isinstance(v, float) else str(v)
                 for v in (row[d].values.item() for d in dims)]
        lines.append("| " + " | ".join(cells + [str(int(summary.n)), p("p_broken"),
                                                median("steps_to_break"), p("p_converged"),
                                                median("steps_to_converge")]) + " |")
    x_dim, _ = overview_axes(summary)
    return "\n".join([
        description(ds), "", "### Setup", "", setup_table(ds), "", "### Results", "",
        f"One row per grid point ({int(summary.n)} networks each; the seeds pool the data "
        "draws). P(broken): every hidden layer's direction diversity s2/s1 exceeded the "
        "threshold within the budget, with 95% Wilson intervals; medians are Kaplan-Meier "
        f"medians with 95% CIs, right-censored at the budget of {budget} steps ('> budget': "
        "not reached).", "", *lines, "",
        f"![overview]({stem}.png)" + (f" (x: {x_dim})" if x_dim else "")])


def overview_axes(summary) -> tuple[str | None, list[str]]:
    """``(x axis, the other grid dims)`` of :func:`fig_overview` for a summary Dataset."""
    dims = [d for d in summary.p_broken_p.dims]
    numeric = [d for d in NUMERIC_X if d in dims and summary.sizes[d] > 1]
    x = numeric[0] if numeric else next((d for d in dims if summary.sizes[d] > 1), None)
    return x, [d for d in dims if d != x]


def _x_scale(values) -> str:
    """"log" for non-negative numbers spanning > 50x, "linear" for other numbers, else
    "categorical"."""
    values = np.asarray(values)
    if values.dtype.kind not in "fiu":
        return "categorical"
    positive = values[values > 0]
    if (values >= 0).all() and positive.size > 1 and positive.max() / positive.min() > 50:
        return "log"
    return "linear"


def fig_overview(summary):
    """P(broken) (Wilson band) and the KM median steps to converge and to break (CI bars) per
    grid point of
    any study (``summary``: :func:`jaxsym.analysis.summary`): x is the first numeric grid axis
    (log scale when it spans decades, 0 at the left edge), else the first grid axis; one curve
    per combination of the other grid dims (at most :data:`OVERVIEW_CURVES`)."""
    x_dim, others = overview_axes(summary)
    budget = summary.attrs["budget"]
    xs = np.asarray(summary[x_dim].values) if x_dim else np.zeros(1)
    scale = _x_scale(xs) if x_dim else "categorical"
    positions = {"log": lambda: sigma_positions(xs.astype(float)),
                 "linear": lambda: xs.astype(float),
                 "categorical": lambda: np.arange(len(xs), dtype=float)}[scale]()
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6), constrained_layout=True)
    combos = list(itertools.product(*(range(summary.sizes[d]) for d in others)))
    for i, combo in enumerate(combos[:OVERVIEW_CURVES]):
        point = summary.isel(dict(zip(others, combo)))
        label = ", ".join(f"{d} = {point[d].values}" for d in others) or summary.attrs["name"]
        colour = PALETTE[i % len(PALETTE)]
        axes[0].plot(positions, np.atleast_1d(point.p_broken_p.values), "o-", color=colour,
                     label=textwrap.shorten(label, 60))
        axes[0].fill_between(positions, np.atleast_1d(point.p_broken_low.values),
                             np.atleast_1d(point.p_broken_high.values), color=colour, alpha=0.15)
        for prefix, style in (("steps_to_converge", "o-"), ("steps_to_break", "s--")):
            med = np.atleast_1d(point[f"{prefix}_median"].values)
            low = np.atleast_1d(point[f"{prefix}_low"].values)
            high = np.minimum(np.atleast_1d(point[f"{prefix}_high"].values), budget)
            shown = np.isfinite(med)
            axes[1].errorbar(positions[shown], med[shown],
                             yerr=[med[shown] - low[shown], high[shown] - med[shown]],
                             fmt=style, color=colour, capsize=2,
                             mfc=colour if prefix == "steps_to_converge" else "none")
            axes[1].plot(positions[~shown], np.full((~shown).sum(), budget), "v", color=colour)
    for ax in axes:
        if scale == "log":
            ax.set_xscale("log")
            ax.minorticks_off()
            keep = slice(None) if len(xs) <= 8 else slice(None, None, -(-len(xs) // 8))
            ax.set_xticks(positions[keep], ["0" if v == 0 else f"{v:.0e}" for v in xs[keep]])
        elif scale == "categorical":
            ax.set_xticks(positions, [str(v) for v in xs] if x_dim else [""])
        ax.set_xlabel(x_dim or "")
    axes[0].set_ylim(-0.03, 1.03)
    axes[0].set_ylabel("P(symmetry broken) (95% Wilson)")
    axes[1].set_ylabel("median steps (KM, 95% CI)")
    axes[1].plot([], [], "ko-", label="to converge")
    axes[1].plot([], [], "ks--", mfc="none", label="to break")
    axes[1].legend(loc="lower left")
    axes[1].axhline(budget, color="grey", lw=0.8, ls="--")
    axes[1].text(0.99, 0.5, f"budget {budget} steps (v: median not reached)", ha="right",
                 transform=axes[1].transAxes, va="top", fontsize=7)
    axes[0].legend(loc="best")
    fig.suptitle(summary.attrs["name"] + ("" if len(combos) <= OVERVIEW_CURVES else
                                          f" (first {OVERVIEW_CURVES} of {len(combos)} curves)"))
    return fig


def render(numbers, figures_dir) -> list[str]:
    """One section per run."""
    lines = []
    for ds, summary in numbers["runs"]:
        stem = f"overview_{ds.attrs['name']}"
        save(fig_overview(summary), figures_dir, stem)
        lines += [f"## {ds.attrs['name']}", "", _generic_text(ds, summary, stem), ""]
    return lines
