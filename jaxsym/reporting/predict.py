"""The "answer, predicted" section: the linearised escape's whole curve against the measured
time to break, per task, cell, data draw and sigma_b, and per hidden layer of deeper runs.

Contract: :func:`render` ``(numbers, figures_dir) -> list of markdown lines`` from
:func:`jaxsym.analysis.predict.analyse`; draws ``predict``.
"""

from __future__ import annotations

import textwrap

import numpy as np

from jaxsym.analysis import stats
from jaxsym.analysis.common import loss_of, unit_roundoff
from jaxsym.analysis.escape import ESCAPE_FIT_ABOVE_U
from jaxsym.reporting.common import LOSS_LABELS, setups
from jaxsym.reporting.plotting import PALETTE, log_axis, plt, save

__all__ = ["render"]

INTRO = (
    "Each hidden unit's bias is b_j = mean + d_j with the deviation d orthogonal to the "
    "all-ones vector and ||d||^2 ~ sigma_b^2 chi^2(m - 1). To first order in d the "
    "optimizer propagates d along the SYMMETRIC trajectory (the run from sigma_b = 0), and "
    "because every step commutes with permuting the units, unit j moves by d_j u_t for "
    "one per-unit vector u_t, whatever d is: hidden layer 1's weights are W(t) = 1 c_t^T + "
    "d u_t^T. Its s2/s1 then exceeds the threshold exactly when ||d|| exceeds a closed-form "
    "a*_t (from c_t and u_t), so ONE symmetric trajectory and one tangent "
    "(`jaxsym.theory.escape`, forward-mode `jax.jvp` of the optax step) predict every "
    "network's time to break, and the chi^2 law of ||d|| gives P(broken by T) and every "
    "quantile at every sigma_b, with no fitted parameter. At the collapsed saddle a*_t "
    "falls by ln(1 + lr|lambda_min|) per step (the log-law slope below); the prediction "
    "also covers the approach to it and the large-sigma_b end. Upper hidden layers stay "
    "rank one to first order (c_t and u_t are constant across their inputs), so with two "
    "or more hidden layers only layer 1 is predicted to break; the upper layers need "
    "second-order terms.")
DRAWS = (
    "**The training set matters.** Every cell is trained on several independent draws of "
    "its task (`task.draws`): the symmetric trajectory, and with it the time to break, "
    "depends on the draw, sometimes by a factor of several (column 'draws' below: the "
    "range of the draws' predicted medians at the smallest sigma_b). Pooled over draws the "
    "time to break is a mixture with several modes whose median can fall between them, so "
    "the prediction is made and checked PER DRAW (the pooled mixture is listed too).")


def _cell_label(row) -> str:
    return ", ".join(str(v) for v in row["cell"].values())


def _task_label(ds) -> str:
    return ds.attrs["task"] + (f" (depth {len(ds.attrs['layer_sizes']) - 1})"
                               if len(ds.attrs["layer_sizes"]) > 3 else "")


def _draw_spread(rows) -> str:
    sigma = min(r["sigma_b"] for r in rows)
    values = sorted(r["predicted"] for r in rows if r["sigma_b"] == sigma)
    shown = [f"{v:.0f}" if np.isfinite(v) else "never" for v in values]
    return shown[0] if len(set(shown)) == 1 else f"{shown[0]} to {shown[-1]}"


def _p_inside(row) -> bool:
    return bool(row["p_low"] - 1e-12 <= row["p_predicted"] <= row["p_high"] + 1e-12)


def _summary_row(task, label, mine, pool) -> str:
    errors = [(abs(r["error"]), r["sigma_b"], r["draw"]) for r in mine if r["error"] is not None]
    worst = max(errors, key=lambda e: e[0]) if errors else None
    p_ok = sum(_p_inside(r) for r in mine)
    in_ci = sum(r["inside_ci"] for r in mine)
    return (f"| {task} | {label} | {sum(r['agree'] for r in mine)} of {len(mine)} | "
            f"{in_ci} of {len(mine)} | "
            + (f"{100 * worst[0]:.1f}% (sigma_b = {worst[1]:.0e}"
               + (f", draw {worst[2]}" if worst[2] is not None else "") + ")"
               if worst else "n/a")
            + f" | {p_ok} of {len(mine)} | {_draw_spread(mine)} | "
            f"{sum(r['agree'] for r in pool)} of {len(pool)} | {mine[0]['n']} |")


#: a row (task, activation) where fewer than this fraction of its points agree is named as a
#: place where the first-order theory fails
FAILING_ROW = 0.9


def _totals(tallies) -> str:
    """One line over EVERY row of the summary table (deeper networks included): the points
    whose median agrees, those whose P(broken) lies inside its interval, and the rows where
    the theory fails (fewer than :data:`FAILING_ROW` of their points agree)."""
    n = sum(t[2] for t in tallies)
    agree, p_ok = sum(t[1] for t in tallies), sum(t[3] for t in tallies)
    failing = [f"{label}: {a} of {k}" for label, a, k, _ in tallies if a < FAILING_ROW * k]
    return (f"**Over every row above** (each (task, activation, draw, sigma_b) point counted "
            f"once, deeper networks included): medians within 5% at **{agree} of {n}** "
            f"({100 * agree / n:.0f}%), P(broken) inside its 95% interval at **{p_ok} of {n}**"
            f" ({100 * p_ok / n:.0f}%). "
            + ("Rows where the first-order theory fails (fewer than "
               f"{100 * FAILING_ROW:g}% of their medians within 5%): " + "; ".join(failing)
               + "." if failing else
               f"No row has fewer than {100 * FAILING_ROW:g}% of its medians within 5%."))


def _earlier(row) -> bool:
    """The measured escape came before the predicted one (what rounding residue does)."""
    return bool(row["measured"].reached and row["measured"].median < row["predicted"])


def _misses(ds, task, per_draw) -> list[str]:
    floor = ESCAPE_FIT_ABOVE_U * unit_roundoff(ds.attrs["dtype"])
    out = []
    for r in per_draw:
        if not r["agree"]:
            where = (f"within {ESCAPE_FIT_ABOVE_U:g} unit roundoffs of {ds.attrs['dtype']}'s "
                     "floor: the rounding of the (non-identical) units adds to the bias "
                     "deviation and the measured escape comes earlier"
                     if r["sigma_b"] <= floor and _earlier(r)
                     else "not explained by the first-order theory")
            out.append(f"- {task}, {_cell_label(r)}, draw {r['draw']}, sigma_b = "
                       f"{r['sigma_b']:.0e}: predicted {r['predicted']:.0f}, measured "
                       f"{stats.format_median(r['measured'], ds.attrs['steps'])}: {where}.")
    return out


def _detail(ds, task, labels, per_draw) -> list[str]:
    columns = [(label, d) for label in labels
               for d in sorted({r["draw"] for r in per_draw if _cell_label(r) == label},
                               key=str)]
    out = [f"**{task}** ({ds.attrs.get('draws', 1)} data draws; each entry: predicted "
           "/ measured median step):", "",
           "| sigma_b | " + " | ".join(label + ("" if d is None else f", draw {d}")
                                      for label, d in columns) + " |",
           "|---|" + "---|" * len(columns)]
    sigmas = sorted({r["sigma_b"] for r in per_draw})
    for sigma in sigmas[::2] if len(sigmas) > 7 else sigmas:
        cells = []
        for label, d in columns:
            r = next(r for r in per_draw if _cell_label(r) == label and r["draw"] == d
                     and r["sigma_b"] == sigma)
            pred = f"{r['predicted']:.0f}" if np.isfinite(r["predicted"]) else "never"
            meas = (f"{r['measured'].median:.0f}" if r["measured"].reached
                    else f"> {ds.attrs['steps']}")
            cells.append(f"{pred} / {meas}")
        out.append(f"| {sigma:.0e} | " + " | ".join(cells) + " |")
    return out + [""]


def _predict_text(panels, tolerance) -> str:
    """Predicted vs measured time to break, per task, activation, data draw and sigma_b."""
    summary, detail, misses, tallies = [], [], [], []
    for panel in panels:
        ds, rows = panel["ds"], panel["rows"]
        task = _task_label(ds)
        pooled = [r for r in rows if r["draw"] is None]
        per_draw = [r for r in rows if r["draw"] is not None] or pooled
        labels = list(dict.fromkeys(_cell_label(r) for r in pooled))
        for label in labels:
            mine = [r for r in per_draw if _cell_label(r) == label]
            summary.append(_summary_row(task, label, mine,
                                        [r for r in pooled if _cell_label(r) == label]))
            tallies.append((f"{task}, {label}", sum(r["agree"] for r in mine), len(mine),
                            sum(_p_inside(r) for r in mine)))
        misses += _misses(ds, task, per_draw)
        detail += _detail(ds, task, labels, per_draw)
    return "\n".join([
        INTRO, "", DRAWS, "",
        f"Per draw: predicted median within {100 * tolerance:g}% (or one step, "
        "the resolution of a time counted in steps) of the measured Kaplan-Meier median (or "
        "both beyond the budget), and predicted P(broken by the budget) inside the measured "
        "95% Wilson interval, over every (sigma_b, draw):", "",
        "| task | activation | medians within 5% | median inside its 95% CI | largest error | "
        "P(broken) inside CI | draws' predicted medians at the smallest sigma_b | pooled "
        "mixture within 5% | networks per draw |", "|---|---|---|---|---|---|---|---|---|",
        *summary, "", _totals(tallies), "",
        "Per-draw medians outside 5%:" if misses else "", *misses, "", *detail])


def _layer_text(ds, table) -> str:
    """Per hidden layer of a deeper predict run: predicted and measured P(broken by the budget)
    and the measured median step, per sigma_b (pooled over cells and draws)."""
    depth = len(ds.attrs["layer_sizes"]) - 1
    hidden = depth - 1
    lines = ["| sigma_b | " + " | ".join(
        f"layer {l + 1}: P predicted / measured, median step" for l in range(hidden))
        + " | network (every layer) P |", "|---|" + "---|" * (hidden + 1)]
    for row in table:
        cells = [f"{c['p_predicted']:.2f} / {c['p_measured']:.2f}, "
                 f"{stats.format_median(c['median'], ds.attrs['steps'])}" for c in row["layers"]]
        lines.append(f"| {row['sigma_b']:.0e} | " + " | ".join(cells)
                     + f" | {row['p_network']:.2f} |")
    return "\n".join([
        f"**Per hidden layer** ({ds.attrs['task']}, depth {depth}, every activation and draw "
        "pooled): the first hidden layer follows its first-order prediction; the upper ones "
        "have none (rank one to first order: their rows and their deviations are constant "
        "across their inputs, which are identical units of the layer below), so they can only "
        "diversify through second-order products of the two layers' deviations, late or never, "
        "and 'broken' in the network sense (every hidden layer) is rare even where the first "
        "layer broke.", "", *lines])


def _panel_axes(ax, ds, rows, curve) -> None:
    categorical = curve["categorical"]
    for k, quantiles in enumerate(curve["draws"]):
        colour = PALETTE[k % len(PALETTE)]
        fine = curve["fine"]
        ax.plot(fine, np.where(np.isfinite(quantiles[0.5]), quantiles[0.5], np.nan),
                color=colour, lw=1.0, label=f"draw {k}: predicted")
        ax.fill_between(fine, np.where(np.isfinite(quantiles[0.9]), quantiles[0.9], np.nan),
                        np.where(np.isfinite(quantiles[0.1]), quantiles[0.1], np.nan),
                        color=colour, alpha=0.12, lw=0)
        key = k if len(curve["draws"]) > 1 else None
        mine = [r for r in rows if r["cell"] == dict(categorical) and r["draw"] == key
                and r["measured"].reached]
        x = np.array([r["sigma_b"] for r in mine])
        y = np.array([r["measured"].median for r in mine])
        lo = np.array([r["measured"].low for r in mine])
        hi = np.array([r["measured"].high if np.isfinite(r["measured"].high) else
                       r["measured"].median for r in mine])
        ax.errorbar(x, y, yerr=[y - lo, hi - y], fmt="o", ms=3, color=colour, mfc="white",
                    capsize=1.5, lw=0.8, label=f"draw {k}: measured")
    log_axis(ax, ds.sigma_b.values)
    depth = len(ds.attrs["layer_sizes"]) - 1
    ax.set_title(f"{ds.attrs['task']} / {LOSS_LABELS.get(loss_of(ds), loss_of(ds))}"
                 + (f", depth {depth}" if depth > 2 else "") + ": "
                 + ", ".join(str(v) for _, v in categorical), fontsize=8)


def fig_predict(panels):
    """The whole curve, predicted and measured, per data draw: one row per run, one column
    per cell (e.g. activation). Lines: each draw's predicted median step to break over a fine
    sigma_b grid (band: its predicted 10-90% quantiles); markers: that draw's measured
    Kaplan-Meier medians with 95% CIs."""
    n_cols = max(len(p["curves"]) for p in panels)
    fig, axes = plt.subplots(len(panels), n_cols, figsize=(3.3 * n_cols, 3.0 * len(panels)),
                             squeeze=False)
    for row_axes, panel in zip(axes, panels):
        for ax, curve in zip(row_axes, panel["curves"]):
            _panel_axes(ax, panel["ds"], panel["rows"], curve)
        row_axes[0].set_ylabel("step at which layer 1 breaks")
    axes[0, -1].legend(fontsize=6, ncol=2)
    fig.suptitle("\n".join(textwrap.wrap(
        "Linearised escape (one symmetric trajectory per data draw, no fitted parameter) "
        "against the sweep; lines: predicted median (band 10-90%), markers: measured "
        "Kaplan-Meier median (95% CI)", 40 * n_cols)), fontsize=8.5)
    fig.tight_layout()
    return fig


def render(numbers, figures_dir) -> list[str]:
    """The section's markdown lines (and the ``predict`` figure)."""
    panels = numbers["panels"]
    save(fig_predict(panels), figures_dir, "predict")
    deep = [_layer_text(p["ds"], p["layers"]) for p in panels if p["layers"] is not None]
    return ["## The answer, predicted: the whole curve from one symmetric trajectory", "",
            _predict_text(panels, numbers["tolerance"]), "", *[t + "\n" for t in deep],
            "### Setup", "", *setups(p["ds"] for p in panels),
            "![predicted vs measured](predict.png)", ""]
