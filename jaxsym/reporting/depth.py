"""The depth section: every hidden layer's time to break in deep constant-W networks with
random biases in every layer, measured against the leave-one-layer-symmetric prediction.

Contract: :func:`render` ``(numbers, figures_dir) -> list of markdown lines`` from
:func:`jaxsym.analysis.depth.analyse`; draws ``depth``.
"""

from __future__ import annotations

import math

import numpy as np

from jaxsym.analysis import stats
from jaxsym.reporting.common import description, setup_table
from jaxsym.reporting.plotting import PALETTE, plt, save

__all__ = ["render"]


def _error(value: float) -> str:
    return "never vs reached" if math.isinf(value) else f"{100 * value:+.1f}%"


def _hidden(depth: int) -> str:
    return f"{depth - 1} hidden layer{'s' if depth > 2 else ''}"


def _median(m, budget) -> str:
    return stats.format_median(m, budget)


def _count(rows, key=None) -> tuple[int, int, str]:
    """(within 5%, networks within tolerance, largest error) of one prediction over rows."""
    entries = [r if key is None else r[key] for r in rows]
    errors = [abs(e["error"]) for e in entries]
    worst = max(errors) if errors else math.nan
    return (sum(e["ok"] for e in entries), sum(e["networks_close"] for e in entries),
            "never vs reached" if math.isinf(worst) else f"{100 * worst:.1f}%")


def _summary_table(runs) -> list[str]:
    lines = ["| depth (hidden layers) | points x layers | directions parallel: median within "
             "5% | networks within 2 steps or 2% | largest median error | layer symmetric: "
             "median within 5% | networks | largest error | layer 1, first-order theory: "
             "within 5% |", "|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        layers = [layer for p in run["points"] for layer in p["layers"]]
        n = sum(layer["n"] for layer in layers)
        ok, close, worst = _count(layers)
        s_ok, s_close, s_worst = _count(layers, "symmetric")
        first = [p["layers"][0]["first_order"] for p in run["points"]
                 if p["layers"][0]["first_order"] is not None]
        lines.append(f"| {run['depth']} ({run['depth'] - 1}) | {len(layers)} | {ok} of "
                     f"{len(layers)} | {close} of {n} | {worst} | {s_ok} of {len(layers)} | "
                     f"{s_close} of {n} | {s_worst} | "
                     + (f"{sum(f['ok'] for f in first)} of {len(first)}" if first else "n/a")
                     + " |")
    return lines


def _target_line(target) -> str:
    if not target["total"]:
        depths = " and ".join(map(str, target["depths"]))
        return ("Target (issue 22): the predicted median within 5% of the measured one at >= "
                f"90% of the points, per layer, at depths {depths}: no run at those depths "
                "here.")
    share = target["met"] / target["total"]
    text = (f"Target (issue 22): the predicted median within "
            f"{100 * target['tolerance']:.0f}% of the measured one at >= "
            f"{100 * target['fraction']:.0f}% of the (point, layer) pairs at depths "
            f"{' and '.join(map(str, target['depths']))}: {target['met']} of {target['total']} "
            f"({100 * share:.0f}%), {'met' if target['reached'] else 'NOT met'} by the "
            f"directions-parallel prediction; the layer-symmetric one: {target['symmetric']} "
            f"of {target['total']}.")
    if target["misses"]:
        worst = sorted(target["misses"], key=lambda m: -abs(m["error"]))
        text += " Misses: " + "; ".join(
            f"depth {m['depth']} {m['activation']} sigma_b {m['sigma_b']:.0e} layer "
            f"{m['layer']} ({_error(m['error'])})" for m in worst[:8])
        text += (f" and {len(worst) - 8} more." if len(worst) > 8 else ".")
    return text


def _run_table(run) -> list[str]:
    budget = int(run["ds"].attrs["steps"])
    hidden = len(run["points"][0]["layers"])
    lines = ["| activation | sigma_b | " + " | ".join(f"layer {i + 1}" for i in range(hidden))
             + " |", "|---|---|" + "---|" * hidden]
    for p in run["points"]:
        cells = []
        for layer in p["layers"]:
            mark = "" if layer["ok"] else " **x**"
            s_mark = "" if layer["symmetric"]["ok"] else " **x**"
            cells.append(f"{_median(layer['measured'], budget)} / "
                         f"{_median(layer['predicted'], budget)}{mark} / "
                         f"{_median(layer['symmetric']['median'], budget)}{s_mark}; f "
                         f"{_median(layer['functional'], budget)}")
        lines.append(f"| {p['activation']} | {p['sigma_b']:.0e} | " + " | ".join(cells) + " |")
    return lines


def _figure(runs):
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    lo, hi = math.inf, 0.0
    for i, run in enumerate(runs):
        color = PALETTE[i % len(PALETTE)]
        for key, marker in (("predicted", "o"), ("symmetric", "x")):
            xs, ys = [], []
            for p in run["points"]:
                for layer in p["layers"]:
                    predicted = (layer["predicted"] if key == "predicted"
                                 else layer["symmetric"]["median"])
                    if layer["measured"].reached and predicted.reached:
                        xs.append(layer["measured"].median)
                        ys.append(predicted.median)
            if xs:
                ax.scatter(xs, ys, s=14 if marker == "o" else 18, color=color, marker=marker,
                           label=f"depth {run['depth']}" + (", layer symmetric"
                                                            if key == "symmetric" else ""))
                lo, hi = min(lo, min(xs), min(ys)), max(hi, max(xs), max(ys))
    if math.isfinite(lo):
        line = np.array([max(lo / 1.5, 1.0), hi * 1.5])
        ax.plot(line, line, color="black", lw=0.8)
        ax.fill_between(line, line * 0.95, line * 1.05, color="grey", alpha=0.3,
                        label="within 5%")
        ax.legend(fontsize=6.5, ncol=2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured median step to break (Kaplan-Meier)")
    ax.set_ylabel("predicted median step to break")
    ax.set_title("Per hidden layer and grid point: directions parallel (o), layer "
                 "symmetric (x)", fontsize=8.5)
    fig.tight_layout()
    return fig


def render(numbers, figures_dir) -> list[str]:
    """The section's markdown lines (and the ``depth`` figure)."""
    runs = numbers["runs"]
    if not runs:
        return []
    save(_figure(runs), figures_dir, "depth")
    lines = ["## Deep networks, layer by layer", "", description(runs[0]["ds"]), "",
             "Every hidden layer starts with identical units (constant W) and its own random "
             "biases. Measured: the layer's step to break (its W's direction diversity s2/s1 "
             "above the threshold, tested every step; Kaplan-Meier median over the networks). "
             "Predicted network by network, with no fit (jaxsym.theory.depth), two ways. "
             "*Layer symmetric*: the layer's own bias deviation linearised along the trajectory "
             "on which ONLY that layer's units are averaged, every other layer followed "
             "nonlinearly with its own random biases. *Directions parallel*: the layer's rows "
             "kept parallel (its W projected on rank one every step; the units' scales, biases "
             "and outgoing weights followed nonlinearly) and only the part of each step that "
             "splits their directions propagated linearly; it differs from the first where the "
             "layer's norm mode (rows scaling apart while parallel) grows to O(1) before its "
             "directions split. The first-order theory linearises every layer around the fully "
             "symmetric trajectory; it predicts hidden layer 1 only (last column).", "",
             _target_line(numbers["target"]), "", *_summary_table(runs), "",
             "![depth](depth.png)", ""]
    for run in runs:
        lines += [f"### Depth {run['depth']} ({_hidden(run['depth'])})", "",
                  "Each cell: measured median step to break [95% CI] / predicted median, "
                  "directions parallel / predicted median, layer symmetric; **x**: not "
                  "within 5%; f: the functional metric's median (first record "
                  "checkpoint at which the layer's centred activations have s2/s1 above the "
                  "threshold, an upper bound at checkpoint resolution).", "",
                  *_run_table(run), "", "Setup:", "", setup_table(run["ds"]), ""]
    return lines
