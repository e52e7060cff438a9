"""The calibration section: does constant W + random b train as well as random W, with how
much sigma_b and at what cost? One recommendation row per (task, optimizer, activation), the
sigma_90 table, and the test score and P(success) against sigma_b per (task, optimizer).

Contract: :func:`render` ``(numbers, figures_dir) -> list of markdown lines`` from
:func:`jaxsym.analysis.calibrate.analyse`; draws ``calibrate_<task>_<optimizer>``.
"""

from __future__ import annotations

import math

import numpy as np

from jaxsym.analysis.calibrate import (ACCURACY_MARGIN, BASELINE_MODES, LOSS_FACTOR, P_TARGET,
                                       loss_changes, loss_table_pairs)
from jaxsym.reporting.common import score_cell as _score, sigma_fit_cell
from jaxsym.reporting.plotting import PALETTE, plt, save

__all__ = ["render", "answer", "DEFINITIONS"]

#: what every number of the section means (the analysis module states the same)
DEFINITIONS = (
    "Every init cell (a random-W baseline, or one (c, sigma_b) of constant W = c/sqrt(fan_in) "
    "with biases N(0, sigma_b^2)) gets the learning rate of its grid with the best mean final "
    "**validation** score (accuracy; minus the loss for regression); the test set is read only "
    "after that choice. **Test score**: mean test accuracy with its Student-t 95% CI (clipped "
    "to [0, 1]); for regression the geometric-mean test loss (CI on log10). A network "
    "**succeeds** when its final test accuracy is at least "
    f"{1 - ACCURACY_MARGIN:g} x the mean of Glorot's networks on the same data draw "
    f"(regression: test loss at most {LOSS_FACTOR:g} x their geometric mean); the **cost "
    "factor** is the ratio of the median steps to reach that target (first record step; "
    "censored at the budget), init over Glorot, with a bootstrap 95% CI (n/a: Glorot's own "
    f"median not reached). **sigma_{round(P_TARGET * 100)}** is where a logistic fit of "
    f"P(success) in log10(sigma_b) reaches {P_TARGET:g} on its rising branch, with a stratified "
    "bootstrap 95% CI ('<= x': at or below the smallest sigma_b tried; 'never': no sigma_b "
    f"reached it; 'P < {P_TARGET:g} again at x': the success rate falls below it again at the "
    "larger sigma_b = x). The "
    "recommended cell is the constant-W cell with the best mean validation score (its 'near "
    "ties': the other cells whose mean validation score reaches the lower end of its 95% CI, "
    "which the validation split cannot tell from it); verdict "
    "against the same target pooled over draws: 'yes' when its test score meets it, 'no' "
    "when even the favourable end of its CI misses it, else 'unclear'. W broken / fn broken: "
    "the fractions of its networks whose W rows stopped being parallel (s2/s1 of W) and whose "
    "units compute different functions at the end (s2/s1 of the centred activations), both "
    "against the diversity threshold.")


def _ratio(ratio) -> str:
    if not math.isfinite(ratio.value) and ratio.value != math.inf:
        return "n/a"

    def one(x):
        return "inf" if not math.isfinite(x) else f"{x:.2f}"
    return f"{one(ratio.value)} [{one(ratio.low)}, {one(ratio.high)}]"


def _ties(near) -> str:
    """`` (n near ties: c lo-hi, sigma_b lo-hi)`` of a recommendation ('' when it has none)."""
    if not near or len(near) < 2:
        return ""
    cs, sigmas = sorted({c for c, _ in near}), sorted({s for _, s in near})

    def span(values):
        return f"{values[0]:g}" if len(values) == 1 else f"{values[0]:g}-{values[-1]:g}"

    return f" ({len(near) - 1} near ties: c {span(cs)}, sigma_b {span(sigmas)})"


def _recommendation_table(pairs) -> str:
    head = ("| task | optimizer | activation | constant-W recipe (c, sigma_b, lr) | test score "
            "[95% CI] | Glorot | PyTorch default | LeCun normal | cost factor vs Glorot | "
            f"sigma_{round(P_TARGET * 100)} at that c | W broken / fn broken | as well as "
            "Glorot? |")
    lines = [head, "|" + "---|" * 12]
    for pair in pairs:
        cls = pair["classification"]
        for row in pair["rows"]:
            rec = row["recommendation"]
            cell, base = rec["cell"], row["baselines"]
            lines.append(
                f"| {pair['task']} | {pair['optimizer']} | {row['activation']} | "
                f"c = {rec['c']:g}, sigma_b = {rec['sigma_b']:g}, lr = {cell['learning_rate']:g}"
                f"{_ties(rec.get('near'))} | {_score(cell['test'], cls)} | {_score(base['glorot']['test'], cls)} | "
                f"{_score(base['torch_default']['test'], cls)} | "
                f"{_score(base['normal']['test'], cls)} | {_ratio(cell['cost'])} | "
                f"{sigma_fit_cell(rec['fit'])} | {cell['p_broken']:.2f} / {cell['p_functional']:.2f} | "
                f"{rec['verdict']} |")
    return "\n".join(lines)


#: how the tables name each init (the baselines' and alternatives' weight modes)
INIT_LABELS = {"glorot": "Glorot", "torch_default": "PyTorch default", "normal": "LeCun normal",
               "orthogonal": "orthogonal", "random_output": "random output layer only",
               "signed_output": "alternating-sign output weights",
               "hadamard": "Hadamard rows (ZerO-style)"}


def _entry(numbers, cls: bool) -> str:
    """Tuned test score [CI] (W broken / fn broken) of one cell."""
    return (f"{_score(numbers['test'], cls)} ({numbers['p_broken']:.2f} / "
            f"{numbers['p_functional']:.2f})")


def _zero_entry(zero, cls: bool, knob: str = "sigma_b") -> str:
    """The best tuned cell of a W = 0 (``knob`` sigma_b) or dropout (``knob`` p) row, its
    value and its verdict ("n/a" without the run)."""
    if zero is None:
        return "n/a"
    return f"{_entry(zero['cell'], cls)} at {knob} = {zero['best']:g}: {zero['verdict']}"


def _alternatives_table(pairs) -> str | None:
    """Every random-W baseline and alternative (b = 0) next to constant W + random b and
    W = 0 + random b, tuned test score with its 95% CI and the fractions W broken / fn broken;
    None when the runs hold only the three baselines."""
    modes = []
    for pair in pairs:
        for mode in pair["rows"][0]["baselines"]:
            if mode not in modes:
                modes.append(mode)
    if len(modes) <= len(BASELINE_MODES):
        return None
    dropout = any(row.get("dropout") for pair in pairs for row in pair["rows"])
    head = ("| task | optimizer | activation | constant W + random b (recommended) | "
            "W = 0 + random b (best sigma_b: verdict) | "
            + ("dropout on identical units (best p: verdict) | " if dropout else "")
            + " | ".join(INIT_LABELS.get(m, m) for m in modes) + " |")
    lines = [head, "|" + "---|" * (5 + dropout + len(modes))]
    for pair in pairs:
        cls = pair["classification"]
        for row in pair["rows"]:
            cell = row["recommendation"]["cell"]
            base = row["baselines"]
            lines.append(f"| {pair['task']} | {pair['optimizer']} | {row['activation']} | "
                         f"{_entry(cell, cls)} | {_zero_entry(row.get('zero'), cls)} | "
                         + (f"{_zero_entry(row.get('dropout'), cls, 'p')} | " if dropout
                            else "")
                         + " | ".join(_entry(base[m], cls) if m in base else "n/a"
                                      for m in modes) + " |")
    return "\n".join(lines)


def _loss_table(numbers) -> str | None:
    """The loss varied at a fixed task: per (task, optimizer, activation), for the task's own
    loss and each other one, Glorot's tuned test score and the recommended constant-W +
    random-b cell's score, verdict and cost factor (each loss tuned and judged on its own);
    None without loss runs."""
    if not numbers.get("loss_pairs"):
        return None
    losses, groups = [], {}
    for pair in loss_table_pairs(numbers):
        groups.setdefault((pair["task"], pair["optimizer"]), {})[pair["loss"]] = pair
        if pair["loss"] not in losses:
            losses.append(pair["loss"])
    lines = ["| task | optimizer | activation | "
             + " | ".join(f"{loss}: Glorot | {loss}: constant W + random b" for loss in losses)
             + " |", "|" + "---|" * (3 + 2 * len(losses))]
    for (task, optimizer), by_loss in groups.items():
        activations = [row["activation"] for row in next(iter(by_loss.values()))["rows"]]
        for activation in activations:
            cells = []
            for loss in losses:
                pair = by_loss.get(loss)
                row = next((r for r in pair["rows"] if r["activation"] == activation),
                           None) if pair else None
                if row is None:
                    cells += ["n/a", "n/a"]
                    continue
                cls, rec = pair["classification"], row["recommendation"]
                cells += [_score(row["baselines"]["glorot"]["test"], cls),
                          f"{_score(rec['cell']['test'], cls)}: {rec['verdict']} "
                          f"({_ratio(rec['cell']['cost'])})"]
            lines.append(f"| {task} | {optimizer} | {activation} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: how a verdict is marked in the unit-group table
_MARK = {"yes": "yes", "no": "no", "unclear": "?"}


def _groups_table(pairs) -> str | None:
    """Per (task, optimizer, activation): the tuned test score of Glorot W shared by k groups
    of identical units, each k's verdict, and the smallest k that trains as well as Glorot;
    None without unit-group runs."""
    ks = sorted({k for pair in pairs for row in pair["rows"] if row.get("groups")
                 for k in row["groups"]["cells"]})
    if not ks:
        return None
    head = ("| task | optimizer | activation | "
            + " | ".join(f"k = {k}" for k in ks) + " | Glorot | groups needed |")
    lines = [head, "|" + "---|" * (5 + len(ks))]
    for pair in pairs:
        cls = pair["classification"]
        for row in pair["rows"]:
            groups = row.get("groups")
            if not groups:
                continue
            cells = [f"{_score(groups['cells'][k]['test'], cls)} "
                     f"{_MARK[groups['verdicts'][k]]}" if k in groups["cells"] else "n/a"
                     for k in ks]
            needed = groups["needed"]
            lines.append(f"| {pair['task']} | {pair['optimizer']} | {row['activation']} | "
                         + " | ".join(cells) + f" | {_score(row['baselines']['glorot']['test'], cls)}"
                         f" | {needed if needed is not None else f'> {max(ks)}'} |")
    return "\n".join(lines)


def _sigma_table(pairs) -> str:
    cs = sorted({c for pair in pairs for row in pair["rows"] for c in row["fits"]})
    head = ("| task | optimizer | activation | "
            + " | ".join(f"sigma_{round(P_TARGET * 100)}, c = {c:g}" for c in cs) + " |")
    lines = [head, "|" + "---|" * (3 + len(cs))]
    for pair in pairs:
        for row in pair["rows"]:
            cells = [(sigma_fit_cell(row["fits"][c]) if c in row["fits"] else "n/a") for c in cs]
            lines.append(f"| {pair['task']} | {pair['optimizer']} | {row['activation']} | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines)


def _panel(ax, row, classification: bool, steps: int, what: str) -> None:
    cells = row["cells"]
    cs = sorted({c for c, _ in cells})
    for i, c in enumerate(cs):
        sigmas = np.array(sorted(s for cc, s in cells if cc == c))
        if what == "score":
            values = [cells[(c, s)]["test"] for s in sigmas]
            y = np.array([v.mean for v in values])
            low = np.array([v.low if np.isfinite(v.low) else v.mean for v in values])
            high = np.array([v.high if np.isfinite(v.high) else v.mean for v in values])
            ax.errorbar(sigmas, y, yerr=[y - low, high - y], fmt="o-", ms=3, lw=1, capsize=2,
                        color=PALETTE[i], label=f"constant W, c = {c:g}")
        else:
            ax.plot(sigmas, [cells[(c, s)]["p_success"] for s in sigmas], "o-", ms=3,
                    color=PALETTE[i], label=f"constant W, c = {c:g}")
    if what == "score":
        for j, mode in enumerate(BASELINE_MODES):
            base = row["baselines"][mode]["test"]
            ax.axhline(base.mean, color=PALETTE[4 + j], lw=1, ls="--",
                       label=INIT_LABELS[mode])
        ax.axhline(row["target"], color="grey", lw=0.8, ls=":", label="target")
        ax.set_ylabel("test accuracy" if classification else "test loss")
        if not classification:
            ax.set_yscale("log")
    else:
        ax.set_ylim(-0.03, 1.03)
        ax.set_ylabel("P(success)")
    ax.set_xscale("log")
    ax.set_xlabel("sigma_b")
    ax.set_title(row["activation"])


def fig_pair(pair):
    """Per activation: the tuned test score against sigma_b per c (95% CIs) with the baselines
    and the target (top), and P(success) (bottom)."""
    rows = pair["rows"]
    fig, axes = plt.subplots(2, len(rows), figsize=(2.3 * len(rows) + 0.6, 4.8), squeeze=False)
    for k, row in enumerate(rows):
        _panel(axes[0, k], row, pair["classification"], pair["steps"], "score")
        _panel(axes[1, k], row, pair["classification"], pair["steps"], "p")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 8), frameon=False)
    fig.suptitle(f"{pair['task']}, {pair['optimizer']}: tuned test score and P(success) vs "
                 f"sigma_b ({pair['draws']} data draws x {pair['seeds'] // pair['draws']} "
                 f"seeds per cell, {pair['steps']} steps)", fontsize=8.5)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def _cells(rows) -> str:
    return ", ".join(f"{t}/{o}/{a}" for t, o, a in rows)


def answer(pairs) -> str:
    """The measured answer in plain words, every count and number taken from the
    recommendation table (rows named task/optimizer/activation)."""
    rows = [(pair["task"], pair["optimizer"], row) for pair in pairs for row in pair["rows"]]
    verdicts = {v: [(t, o, r["activation"]) for t, o, r in rows
                    if r["recommendation"]["verdict"] == v] for v in ("yes", "unclear", "no")}
    costs = [r["recommendation"]["cell"]["cost"].value for _, _, r in rows
             if r["recommendation"]["verdict"] == "yes"
             and math.isfinite(r["recommendation"]["cell"]["cost"].value)]
    tiny = [(t, o, r["activation"]) for t, o, r in rows
            if r["recommendation"]["fit"].status in ("always", "below")]
    never = [(t, o, r["activation"]) for t, o, r in rows
             if r["recommendation"]["fit"].status == "never"]
    text = (f"Constant W plus random biases, with the learning rate tuned for it, reached "
            f"Glorot's test score (within the margin above) in {len(verdicts['yes'])} of "
            f"{len(rows)} task/optimizer/activation cells of the recommendation table")
    text += (f"; it fell short in {len(verdicts['no'])} ({_cells(verdicts['no'])})"
             if verdicts["no"] else "; it fell clearly short in none")
    text += (f", and {len(verdicts['unclear'])} are undecided at this number of networks "
             f"({_cells(verdicts['unclear'])})." if verdicts["unclear"] else ".")
    if costs:
        text += (f" Where it did, it needed {np.median(costs):.2g}x Glorot's median steps to "
                 f"reach the target (median over those cells; range {min(costs):.2g}-"
                 f"{max(costs):.2g}).")
    if tiny:
        text += (f" A tiny spread was enough (sigma_{round(P_TARGET * 100)} at or below the "
                 f"smallest sigma_b tried) in {len(tiny)} cells ({_cells(tiny)})")
        text += (f"; no sigma_b reached P(success) >= {P_TARGET:g} in {len(never)} "
                 f"({_cells(never)})." if never else ".")
    elif never:
        text += (f" No sigma_b reached P(success) >= {P_TARGET:g} in {len(never)} cells "
                 f"({_cells(never)}).")
    return text


def _groups_sentence(pairs) -> str:
    rows = [row for pair in pairs for row in pair["rows"] if row.get("groups")]
    needed = [row["groups"]["needed"] for row in rows]
    found = [k for k in needed if k is not None]
    if not rows:
        return ""
    text = (f"A group count trained as well as Glorot in {len(found)} of {len(rows)} "
            "task/optimizer/activation rows")
    if found:
        text += (f", with {int(np.median(found))} groups needed at the median (range "
                 f"{min(found)}-{max(found)})")
    return text + "."


def render(numbers, figures_dir) -> list[str]:
    """The section's markdown lines (and its figures in ``figures_dir``)."""
    pairs = numbers["pairs"]
    lines = ["## Does random b instead of random W train as well? (calibration)", "",
             DEFINITIONS, ""]
    if numbers["missing"]:
        lines += ["Runs without their partner (constant W or baselines), not shown: "
                  + ", ".join("/".join(key) for key in numbers["missing"]) + ".", ""]
    if not pairs:
        return lines
    lines += ["### Recommendation", "", "<!-- recommendation:start -->", answer(pairs), "",
              _recommendation_table(pairs), "<!-- recommendation:end -->", "",
              f"### sigma_{round(P_TARGET * 100)} per constant weight c", "",
              _sigma_table(pairs), ""]
    alternatives = _alternatives_table(pairs)
    if alternatives:
        lines += ["### Is random W the only choice? The alternatives", "",
                  "Tuned test score [95% CI] of every init (b = 0 in all but the two random-b "
                  "recipes and PyTorch's default), each with its own learning rate chosen on "
                  "the validation split; in parentheses the fractions of networks whose W rows "
                  "separated (W broken) and whose units compute different functions at the end "
                  "(fn broken). W = 0 + random b (sgd and Adam only): every weight zero, the "
                  "sigma_b of its grid with the best validation score, and its verdict as in "
                  "the recommendation table"
                  + ("; dropout on identical units (sgd and Adam only): constant W (c = 1), "
                     "b = 0, training-time dropout at the rate p of its grid with the best "
                     "validation score (the units differ only by their dropout masks; "
                     "evaluated without dropout)."
                     if "dropout on identical" in alternatives else "."),
                  "", alternatives, ""]
    groups = _groups_table(pairs)
    if groups:
        lines += ["### How many distinct units does training need?", "",
                  "Glorot W shared by k groups of identical hidden units (unit j in group "
                  "j mod k: same incoming row and outgoing column, b = 0; k = 1 is one "
                  "collapsed unit, k = the width is Glorot itself), the learning rate tuned "
                  "per k; tuned test score [95% CI] and its verdict against Glorot's target "
                  "(yes / no / ? unclear). Groups of identical units stay identical under "
                  "gradient descent, so k is the number of distinct units the network keeps. "
                  + _groups_sentence(pairs), "", groups, ""]
    losses = _loss_table(numbers)
    if losses:
        changed, tried = loss_changes(numbers)
        compared = loss_table_pairs(numbers)
        grids = {tuple(p.get("weight_values", ())) for p in compared}
        if len(grids) == 1:
            weights = ("with every loss on the same constant weights (c = "
                       + ", ".join(f"{c:g}" for c in next(iter(grids)))
                       + "; the recommendation table's own loss may choose among more)")
        else:  # no c common to every loss: say so rather than claim like with like
            weights = ("with constant weights that differ between the losses ("
                       + "; ".join(f"{p['optimizer']} {p['loss']}: c = "
                                   + ", ".join(f"{c:g}" for c in p.get("weight_values", ()))
                                   for p in compared) + ")")
        lines += ["### Does it depend on the loss? The loss varied at a fixed task", "",
                  "The same task, networks and grids trained with each loss (one-hot targets "
                  "for mse and bce), every init's learning rate tuned again per loss on the "
                  "validation split and judged against Glorot with the same loss: tuned test "
                  "score [95% CI], and for constant W + random b its verdict and cost factor "
                  f"[CI] vs that Glorot, {weights}. The verdict differs between the losses "
                  f"in {changed} of {tried} rows.", "", losses, ""]
    for pair in pairs:
        stem = f"calibrate_{pair['task']}_{pair['optimizer']}"
        save(fig_pair(pair), figures_dir, stem)
        lines += [f"![{pair['task']} {pair['optimizer']}]({stem}.png)", ""]
    return lines
