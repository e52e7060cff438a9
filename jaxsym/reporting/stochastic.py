"""The stochastic section: noise that keeps identical units identical (minibatches, label
noise) against the escape, measured and predicted network by network, the critical batch size
and label noise, and the two-GELU toy of Chen et al. (2023).

Contract: :func:`render` ``(numbers, figures_dir) -> list of markdown lines`` from
:func:`jaxsym.analysis.stochastic.analyse`; draws ``stochastic_NAME`` per run.
"""

from __future__ import annotations

import math

import numpy as np

from jaxsym.analysis import stats
from jaxsym.analysis.stochastic import AGREE_REL, AGREE_STEPS, BUDGET_FACTOR
from jaxsym.reporting.common import description, setup_table
from jaxsym.reporting.plotting import PALETTE, plt, save

__all__ = ["render", "CRITICAL_FACTOR"]

#: the target: a measured critical value within this factor of the predicted one
CRITICAL_FACTOR = 1.25


def _value(axis: str, value) -> str:
    if axis == "batch_size":
        return "full" if value == 0 else str(value)
    return f"{value:g}"


def _cell_name(fixed: dict) -> str:
    return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                     for k, v in fixed.items()) or "the whole grid"


def _rate(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:+.2e}"


def _window_ratio(point) -> str:
    """Median measured / predicted growth rate over the same checkpoint windows."""
    m, p = point["rate_measured"], point["rate_predicted"]
    ok = np.isfinite(m) & np.isfinite(p) & (np.abs(p) > 0)
    if ok.sum() == 0:
        return "n/a"
    return f"{np.median(m[ok] / p[ok]):.3f} ({ok.sum()})"


def _points_table(run, cell) -> str:
    axis, budget = cell["axis"], cell["budget"]
    head = ("| " + ("B" if axis == "batch_size" else "label noise") + " | P(broken) [95% CI] "
            "| predicted P | median step to break, measured | predicted | networks whose "
            "break is predicted | Lyapunov exponent, median [IQR] | measured / predicted "
            "growth (networks) | final unit spread (median) |")
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for p in cell["points"]:
        q = p["lyapunov_q"]
        lines.append(
            f"| {_value(axis, p['value'])} | {p['k'] / p['n']:.2f} [{p['low']:.2f}, "
            f"{p['high']:.2f}] | {p['k_predicted'] / p['n']:.2f} | "
            f"{stats.format_median(p['median'], budget)} | "
            f"{stats.format_median(p['median_predicted'], budget)} | {p['agree']} of {p['n']} | "
            f"{_rate(p['lyapunov'])} [{_rate(q[0])}, {_rate(q[1])}] | {_window_ratio(p)} | "
            f"{p['final_spread']:.1e} |")
    return "\n".join(lines)


def _critical_rows(run) -> list[str]:
    rows = []
    for cell in run["cells"]:
        c = cell.get("critical")
        if not c:
            continue
        measured, predicted = c["measured"], c["predicted"]
        if math.isfinite(measured) and math.isfinite(predicted) and predicted > 0 \
                and measured > 0:
            ratio = measured / predicted
            within = "yes" if max(ratio, 1 / ratio) <= CRITICAL_FACTOR else "no"
            ratio_text = f"{ratio:.3f}"
        else:
            ratio_text, within = "n/a", "n/a (no crossing)"
        ci = (f" [{c['low']:.3g}, {c['high']:.3g}]" if math.isfinite(c["low"]) else
              " [CI: the bootstrap does not always cross]")
        budget = cell.get("t_c", cell["budget"])
        rows.append(f"| {_cell_name(cell['fixed'])} | {budget} | "
                    f"{measured:.3g}{ci} | {predicted:.3g} | {ratio_text} | {within} |")
    return rows


def _deterministic_rows(run) -> list[str]:
    """Full batch: the map's growth rate once the symmetric trajectory sits at the collapsed
    saddle against ln r of its Hessian, and the rate over the study's last half of steps."""
    rows = []
    for cell in run["cells"]:
        full = next((p for p in cell["points"] if p["value"] == 0), None)
        ref = cell["saddle_rate"]
        if full is None or ref is None:
            continue
        late = _rate(full["lyapunov"])
        if ref["hessian"] is None:
            rows.append(f"| {_cell_name(cell['fixed'])} | {late} | no saddle reached within "
                        f"{ref['reached_at']} steps (or lambda_min >= 0) | n/a | n/a |")
            continue
        diff = abs(ref["map"] / ref["hessian"] - 1)
        rows.append(f"| {_cell_name(cell['fixed'])} | {late} | {ref['reached_at']} | "
                    f"{_rate(ref['map'])} | {_rate(ref['hessian'])} | {diff:.2%} |")
    return rows


def _summary(run) -> str:
    points = [p for c in run["cells"] for p in c["points"]]
    agree = sum(p["agree"] for p in points)
    total = sum(p["n"] for p in points)
    ratios = np.concatenate([p["rate_measured"] / p["rate_predicted"] for p in points])
    ratios = ratios[np.isfinite(ratios)]
    text = (f"The linearised map along each network's own noisy trajectory predicts the break "
            f"of {agree} of {total} networks (both never, or both within "
            f"{AGREE_STEPS:g} steps or {AGREE_REL:.0%}).")
    if ratios.size:
        text += (f" Measured against predicted growth of the unit spread over the same "
                 f"windows: median ratio {np.median(ratios):.3f}, 90% of {ratios.size} "
                 f"networks within [{np.quantile(ratios, 0.05):.3f}, "
                 f"{np.quantile(ratios, 0.95):.3f}].")
    return text


def fig_stochastic(run):
    """Per cell: P(broken) measured (Wilson band) and predicted, and the Lyapunov exponent,
    against the noise axis."""
    axis = run["axis"]
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4))
    for i, cell in enumerate(run["cells"]):
        color = PALETTE[i % len(PALETTE)]
        x = cell["x"]
        pts = cell["points"]
        label = _cell_name(cell["fixed"])
        if axis == "batch_size" and "p_measured" in cell:
            pm, pp = cell["p_measured"], cell["p_predicted"]
        else:
            pm = [p["k"] / p["n"] for p in pts]
            pp = [p["k_predicted"] / p["n"] for p in pts]
        axes[0].plot(x, pm, marker="o", color=color, label=label)
        axes[0].plot(x, pp, ls="--", color=color)
        axes[1].plot(x, [p["lyapunov"] for p in pts], marker="o", color=color, label=label)
    axes[1].axhline(0.0, color="k", lw=0.8)
    xlabel = "log2 batch size (full batch at log2 n_train)" if axis == "batch_size" \
        else "label noise (std of the per-step target noise)"
    for ax in axes:
        ax.set_xlabel(xlabel)
    axes[0].set_ylabel("P(broken)" + (" by T_c" if axis == "batch_size" else "")
                       + "; dashed: predicted")
    axes[1].set_ylabel("Lyapunov exponent (per step)")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{run['ds'].attrs['name']}: {run['ds'].sizes['seed']} networks per point",
                 fontsize=8.5)
    fig.tight_layout()
    return fig


def _toy_text(toy) -> list[str]:
    lines = ["### The two-GELU toy of Chen et al. (2023)", "",
             f"Two GELU units without biases (start w = (1.0, 0.6), v = (-0.6, -0.4): two "
             f"DIFFERENT units), 8 points x, y ~ N(0, 1), heavy-ball momentum 0.9 at lr 0.1, "
             f"{toy['steps']} steps, fresh label noise each step, {toy['seeds']} seeds per "
             "level (the paper: 8); the paper's criteria at its threshold 0.1 "
             "(jaxsym.theory.collapse_toy).", "",
             "| label noise | P(identical) [95% CI] | P(a unit dead) | P(collapsed: either) |",
             "|---|---|---|---|"]
    for r in toy["rows"]:
        cells = [f"{r[w][0]:.3f} [{r[w][1]:.3f}, {r[w][2]:.3f}]"
                 for w in ("identical", "dead", "collapsed")]
        lines.append(f"| {r['noise']:g}{'' if r['noise'] <= 0.8 else ' (beyond the paper)'} | "
                     + " | ".join(cells) + " |")
    verdict = ("non-decreasing" if toy["monotone_paper"] else
               "NOT non-decreasing (a drop beyond the Wilson intervals)")
    beyond = ("and stays so up to the largest level" if toy["monotone_all"] else
              "but falls again beyond the paper's range (a drop beyond the Wilson intervals): "
              "large label noise kicks the units apart again")
    lines += ["", f"Over the paper's levels (0 - 0.8) P(identical at {toy['steps']} steps) is "
              f"{verdict} in the noise, {beyond}.", ""]
    return lines


def render(numbers, figures_dir) -> list[str]:
    """The section's markdown lines (and one figure per run)."""
    lines = ["## Noise that keeps identical units identical: minibatches and label noise", "",
             "A minibatch, or noise added to the targets, is the same for every unit: it "
             "cannot break the symmetry by itself (identical units stay bitwise identical: "
             "tests/test_stochastic.py). It changes how fast a deviation the biases gave "
             "grows, and can make it shrink: stochastic collapse (Chen, Kunin, Yamamura & "
             "Ganguli 2023). Contrast the noise-dose section, whose per-step parameter noise "
             "differs from unit to unit and so BREAKS the symmetry alone. The prediction "
             "follows the linearised antisymmetric map along each network's own noisy "
             "symmetric trajectory (its minibatch rows and label noise, drawn as the engine "
             "draws them; jaxsym.theory.escape.noisy_escapes), not a fit.", ""]
    for run in numbers["runs"]:
        ds, axis = run["ds"], run["axis"]
        stem = f"stochastic_{ds.attrs['name']}"
        save(fig_stochastic(run), figures_dir, stem)
        lines += [f"### {description(ds)}", "", _summary(run), ""]
        for cell in run["cells"]:
            lines += [f"**{_cell_name(cell['fixed'])}**", "", _points_table(run, cell), ""]
        critical = _critical_rows(run)
        if critical:
            what = ("critical batch size (P(broken by T_c) = 0.5; T_c = "
                    f"{BUDGET_FACTOR:g} x the predicted full-batch median)"
                    if axis == "batch_size" else
                    "critical label noise (P(broken within the steps) = 0.5)")
            lines += [f"The {what}, measured (bootstrap 95% CI over networks) against "
                      f"predicted; target within a factor {CRITICAL_FACTOR:g}:", "",
                      "| cell | budget (steps) | measured | predicted | measured / predicted "
                      f"| within {CRITICAL_FACTOR:g} |", "|---|---|---|---|---|---|",
                      *critical, ""]
        deterministic = _deterministic_rows(run) if axis == "batch_size" else []
        if deterministic:
            lines += ["Full batch against the deterministic theory: the full-batch map's "
                      "growth rate over the 1000 steps after its symmetric trajectory reached "
                      "the collapsed saddle, against ln(1 + lr |lambda_min|) of the saddle's "
                      "Hessian (the study's own steps end before the saddle is reached: their "
                      "late rate is the first column):", "",
                      "| cell | map, last half of the study's steps | steps to reach the saddle "
                      "| map at the saddle | Hessian | relative difference |",
                      "|---|---|---|---|---|---|", *deterministic, ""]
        lines += ["#### Setup", "", setup_table(ds), "", f"![{stem}]({stem}.png)", ""]
    lines += _toy_text(numbers["toy"])
    return lines
