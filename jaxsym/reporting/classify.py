"""The classification section: per (task, loss, activation) cell, data draw and sigma_b, the
theory's mechanism and P(hidden layer 1 broken) against the measured fraction, with the reason
the numbers give for every disagreement.

Contract: :func:`render` ``(numbers, figures_dir) -> list of markdown lines`` from
:func:`jaxsym.analysis.classify.analyse`; no figure.
"""

from __future__ import annotations

import numpy as np

from jaxsym.reporting.common import setups

__all__ = ["render", "explain"]

INTRO = (
    "Every entry below is predicted before any network is trained: per data draw, one "
    "symmetric trajectory and its linearised escape give P(hidden layer 1 broken by the "
    "budget) at each sigma_b, and the mechanism follows from the activation and that "
    "trajectory (`jaxsym.theory.classify`): **log-law** (breaks; g'' != 0 and the "
    "antisymmetric perturbation still grows at the end: the collapsed point is a saddle, "
    "every sigma_b > 0 breaks, later by a fixed number of steps per decade), **transient** "
    "(breaks on the way: relu-type units, whose g'' = 0 gives no splitting and no log-law, "
    "separate through the output weights; or a smooth g whose perturbation grows early and "
    "decays near the end point), **norm** (the deviation grows along the rows: units "
    "differ in norm, not direction, at first order; the direction diversity is second "
    "order, estimated as breaking once the deviation is sqrt(theta) of the rows), "
    "**unstable** (the symmetric trajectory itself diverges: too large a step for m "
    "identical units), **slow** (still growing, but past the budget), **heals** "
    "(the perturbation decays: small sigma_b never breaks), **kink** (relu-type without a "
    "transient: only pre-activations within the bias spread of the kink can separate "
    "units). An entry agrees when both probabilities are >= 0.9, both <= 0.1, or the "
    "prediction lies inside the measured 95% Wilson interval: ")


def explain(row) -> str:
    """Why a (cell, draw, sigma_b)'s prediction and measurement disagree, from the numbers."""
    pred, p = row["prediction"], row["p_measured"]
    reasons = []
    if pred.kink is not None and p > pred.p_broken and pred.kink >= 0.1:
        reasons.append(f"kinks: {pred.kink:.2g} expected (sample, unit) pairs start on the "
                       "other side of the kink, a second-order effect the linear theory "
                       "leaves out")
    if 0.1 < pred.p_broken < 0.9 or 0.1 < p < 0.9:
        reasons.append("an intermediate probability: the predicted break time lies near the "
                       "budget, where a few steps decide")
    if pred.mechanism == "transient" and p < pred.p_broken:
        reasons.append("a transient break: the perturbation grows only on the way to the "
                       "end point, so the first-order estimate of its peak decides")
    if pred.mechanism == "norm":
        reasons.append("a norm-mode break, estimated at second order only (the deviation "
                       "reaching sqrt(theta) of the rows)")
    if (pred.kink_trajectory is not None and p > pred.p_broken
            and pred.kink_trajectory >= 0.5):
        reasons.append(f"kink crossings along the trajectory: P(some unit's pre-activation "
                       f"crosses the kink on a different side by the budget) = "
                       f"{pred.kink_trajectory:.2f}; the delta of g'' at the kink is invisible "
                       "to the first-order escape, and a crossing is necessary but not "
                       "sufficient for a break (see above)")
    elif (pred.kink_trajectory is not None and p < pred.p_broken
          and pred.kink_trajectory < 0.5):
        reasons.append(f"no kink crossing is likely (P = {pred.kink_trajectory:.2f})")
    return "; ".join(reasons) or "not explained by the first-order theory"


def _cell_line(ds, cell, mine, sigmas, slow_slope, tally) -> str:
    draws = sorted({r["draw"] for r in mine})
    mechs = [next(r for r in mine if r["draw"] == d and r["sigma_b"] == sigmas[0])[
        "prediction"].mechanism for d in draws]
    slopes = [r["prediction"].slope for r in mine if r["sigma_b"] == sigmas[0]
              and r["prediction"].slope < slow_slope]
    parts = []
    for sigma in sigmas:
        entries = []
        for d in draws:
            r = next(r for r in mine if r["draw"] == d and r["sigma_b"] == sigma)
            tally["total"] += 1
            tally["agree"] += r["agree"]
            counts = tally["by_mechanism"].setdefault(r["prediction"].mechanism, [0, 0])
            counts[0] += r["agree"]
            counts[1] += 1
            if not r["agree"]:
                tally["disagree"].append((ds.attrs["task"], r))
            entries.append(f"{r['prediction'].p_broken:.2f}/{r['p_measured']:.2f}"
                           + ("" if r["agree"] else "**x**"))
        parts.append(" ".join(entries))
    c = dict(cell)
    return (f"| {ds.attrs['task']} | {c.get('loss', '')} | {c.get('activation', '')} | "
            f"{' '.join(mechs)} | " + (f"{np.median(slopes):.0f}" if slopes else "-") + " | "
            + " | ".join(parts) + " |")


def _kink_text(tables) -> str:
    kinked = [r for _, rows in tables for r in rows
              if r["prediction"].kink_trajectory is not None]
    if not kinked:
        return ""
    no_cross = [r for r in kinked if r["prediction"].kink_trajectory < 0.5
                and r["prediction"].p_broken < 0.5]
    cross = [r for r in kinked if r["prediction"].kink_trajectory >= 0.5
             and r["prediction"].p_broken < 0.5]
    return (
        " **Kinks along the trajectory** (relu-type entries without a first-order break): "
        "where no unit is likely to cross a kink on a different side by the budget (P < 0.5, "
        f"`EscapePrediction.p_kink_by`), {sum(r['p_measured'] < 0.5 for r in no_cross)} of "
        f"{len(no_cross)} entries stayed unbroken: a crossing is necessary. Where one is "
        f"likely, {sum(r['p_measured'] >= 0.5 for r in cross)} of {len(cross)} broke: "
        "not sufficient (the kick of a crossing can stay below the threshold or heal), so the "
        "prediction for those entries stays the first-order one.")


def _classify_text(tables, slow_slope) -> str:
    lines = []
    tally = {"total": 0, "agree": 0, "by_mechanism": {}, "disagree": []}
    for ds, rows in tables:
        sigmas = sorted({r["sigma_b"] for r in rows})
        for cell in dict.fromkeys(tuple(r["cell"].items()) for r in rows):
            mine = [r for r in rows if tuple(r["cell"].items()) == cell]
            lines.append(_cell_line(ds, cell, mine, sigmas, slow_slope, tally))
    header = ("| task | loss | activation | mechanism per draw (theory) | steps per decade "
              "(theory) | " + " | ".join(f"sigma_b = {s:.0e}: predicted/measured P, per draw"
                                         for s in sigmas) + " |")
    explained = [f"- {task}, {r['cell'].get('loss', '')}, {r['cell'].get('activation', '')}, "
                 f"draw {r['draw']}, sigma_b = {r['sigma_b']:.0e}: predicted "
                 f"{r['prediction'].p_broken:.2f}, measured {r['p_measured']:.2f} "
                 f"[{r['p_low']:.2f}, {r['p_high']:.2f}]: {explain(r)}."
                 for task, r in tally["disagree"]]
    by_mechanism = ", ".join(f"{m} {a} of {n}" for m, (a, n) in tally["by_mechanism"].items())
    agree, total = tally["agree"], tally["total"]
    trivial = sum(r["baseline_agree"] for _, rows in tables for r in rows)
    return "\n".join([
        INTRO + f"**{agree} of {total} ({100 * agree / max(total, 1):.0f}%)** (cell, draw, "
        f"sigma_b) entries agree (by predicted mechanism: {by_mechanism}). The baseline to beat "
        "is the rule that needs no theory, \"smooth activations break, relu-type ones do not\" "
        f"(P = 1 or 0, judged the same way): it scores {trivial} of {total} "
        f"({100 * trivial / max(total, 1):.0f}%). The draws of one "
        "cell often differ (xor is the extreme case): the prediction follows each draw."
        + _kink_text(tables), "", header,
        "|---|---|---|---|---|" + "---|" * len(sigmas), *lines, "",
        "Disagreeing entries, each with the reason the numbers give:" if explained else
        "No entry disagrees.", "", *explained])


def render(numbers, figures_dir) -> list[str]:
    """The section's markdown lines."""
    del figures_dir  # no figure
    tables = numbers["tables"]
    return ["## Which activation x loss x task breaks: predicted from theory alone", "",
            _classify_text(tables, numbers["slow_slope"]), "", "### Setup", "",
            *setups(ds for ds, _ in tables)]
