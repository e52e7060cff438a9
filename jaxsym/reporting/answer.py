"""The plain-language answer that opens REPORT.md (and, copied verbatim, README.md): the three
sub-questions of the thread, then what training noise, the hardware, depth and small weights do
to the recipe, each claim a count or number taken from a table of the report and linked to it.

Contract: :func:`answer_lines` ``(sections, link) -> markdown lines`` from the analysed sections
(``{kind: numbers}`` of :func:`jaxsym.analysis.sections.analyse`; a question whose tables are
missing is left out); ``link`` prefixes every anchor (``""`` inside REPORT.md,
``"figures/REPORT.md"`` in the README). :func:`sync_readme` copies the marked blocks
(:data:`BLOCKS`: this answer and the recommendation table) from a report into a README
(``python -m jaxsym.reporting.answer README.md figures/REPORT.md``), so the README's answer is
the committed report's, never typed in. At most :data:`MAX_WORDS` words (tested).
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from jaxsym.analysis.calibrate import loss_changes

__all__ = ["answer_lines", "words", "sync_readme", "block", "markers", "START", "END", "BLOCKS",
           "MAX_WORDS", "ANCHORS"]

START, END = "<!-- answer:start -->", "<!-- answer:end -->"
#: the marked blocks :func:`sync_readme` copies from the report (the answer, then the
#: calibration's recommendation table, :mod:`jaxsym.reporting.calibrate`)
BLOCKS = ("answer", "recommendation")
#: seven questions of one to three sentences each (330 while there were three)
MAX_WORDS = 480
#: the report's headings each claim links to (GitHub's anchors of the section titles)
ANCHORS = {
    "recommendation": "#recommendation",
    "alternatives": "#is-random-w-the-only-choice-the-alternatives",
    "groups": "#how-many-distinct-units-does-training-need",
    "classify": "#which-activation-x-loss-x-task-breaks-predicted-from-theory-alone",
    "decay": "#weight-decay-as-a-cost-function-axis-predicted-from-theory-alone",
    "loss": "#does-it-depend-on-the-loss-the-loss-varied-at-a-fixed-task",
    "stochastic": "#noise-that-keeps-identical-units-identical-minibatches-and-label-noise",
    "hardware": "#hardware-noise-as-a-dose-the-plain-kernels-rounding-sigma_b--0",
    "depth": "#deep-networks-layer-by-layer",
    "plateau": "#small-weights-the-plateau-and-the-break-two-clocks",
}
#: how the answer names the alternatives (b = 0)
_ALTERNATIVES = {"orthogonal": "orthogonal W", "hadamard": "deterministic Hadamard rows",
                 "random_output": "a random output layer alone",
                 "signed_output": "two groups of opposite output sign"}


def _rows(calibrate):
    return [(pair["task"], pair["optimizer"], row) for pair in calibrate["pairs"]
            for row in pair["rows"]]


def _names(rows, limit: int = 3) -> str:
    names = [f"{t}/{o}/{r['activation']}" for t, o, r in rows]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more"
                                       if len(names) > limit else "")


def _q1(calibrate, link) -> str | None:
    rows = _rows(calibrate)
    modes = [m for m in _ALTERNATIVES if all(m in r["baselines"] for _, _, r in rows)]
    if not rows or not modes:
        return None
    counts = [f"{_ALTERNATIVES[m]} {sum(r['baselines'][m]['verdict'] == 'yes' for _, _, r in rows)}"
              for m in modes]
    dropped = [r["dropout"] for _, _, r in rows if r.get("dropout")]
    if dropped:
        counts.append(f"dropout alone {sum(d['verdict'] == 'yes' for d in dropped)} of "
                      f"{len(dropped)} sgd/Adam rows")
    text = ("**Is random W the only choice?** No: anything that makes the units differ works. "
            f"With b = 0, [the alternatives]({link}{ANCHORS['alternatives']}) matched Glorot's "
            f"test score in (of {len(rows)} task/optimizer/activation rows): "
            + ", ".join(counts) + ".")
    grouped = [r["groups"] for _, _, r in rows if r.get("groups")]
    found = [g["needed"] for g in grouped if g["needed"] is not None]
    if grouped:
        text += (f" [Distinct units needed]({link}{ANCHORS['groups']}): "
                 + (f"a median of {int(np.median(found))} groups of identical units (range "
                    f"{min(found)}-{max(found)}; enough in {len(found)} of {len(grouped)} rows)."
                    if found else f"no group count tried was enough ({len(grouped)} rows)."))
    return text


def _factor(x: float) -> str:
    """A cost factor: ``1.8x``, ``820x``."""
    return f"{x:.0f}x" if x >= 100 else f"{x:.2g}x"


def _q2(calibrate, link) -> str | None:
    rows = _rows(calibrate)
    if not rows:
        return None
    verdict = Counter(r["recommendation"]["verdict"] for _, _, r in rows)
    no = [(t, o, r) for t, o, r in rows if r["recommendation"]["verdict"] == "no"]
    yes = [r for _, _, r in rows if r["recommendation"]["verdict"] == "yes"]
    costs = [r["recommendation"]["cell"]["cost"].value for r in yes
             if math.isfinite(r["recommendation"]["cell"]["cost"].value)]
    smallest = min(s for _, _, r in rows for _, s in r["cells"])
    tiny = sum(r["recommendation"]["fit"].status in ("always", "below") for r in yes)
    text = ("**Can random b replace random W?** Often. Constant W = c/sqrt(fan_in) plus biases "
            "N(0, sigma_b^2), lr tuned on validation, matched Glorot in "
            f"{verdict['yes']} of {len(rows)} [rows]({link}{ANCHORS['recommendation']})")
    text += f", fell short in {verdict['no']} ({_names(no)})" if no else ", fell short in none"
    text += f", undecided in {verdict['unclear']}." if verdict["unclear"] else "."
    if costs:
        text += (f" It took a median {_factor(np.median(costs))} Glorot's steps (range "
                 f"{_factor(min(costs))}-{_factor(max(costs))}); sigma_b = {smallest:g} "
                 "already gave "
                 f"90% success in {tiny} of those {len(yes)} rows.")
    zero = [r["zero"] for _, _, r in rows if r.get("zero")]
    if zero:
        text += (f" W = 0 plus random b matched in {sum(z['verdict'] == 'yes' for z in zero)} "
                 f"of {len(zero)} [sgd/Adam rows]({link}{ANCHORS['alternatives']}).")
    return text


def _q3(sections, link) -> str | None:
    parts = []
    calibrate = sections.get("calibrate")
    if calibrate and _rows(calibrate):
        by_act: dict = {}
        for _, _, r in _rows(calibrate):
            ok, n = by_act.get(r["activation"], (0, 0))
            by_act[r["activation"]] = (ok + (r["recommendation"]["verdict"] == "yes"), n + 1)
        parts.append(f"[Matches]({link}{ANCHORS['recommendation']}) per activation: "
                     + ", ".join(f"{a} {ok}/{n}" for a, (ok, n) in by_act.items()) + ".")
    classify = sections.get("classify")
    if classify:
        rows = [r for _, rows in classify["tables"] for r in rows]
        smallest = min(r["sigma_b"] for r in rows)
        tiny = [r for r in rows if r["sigma_b"] == smallest]
        broke = sum(r["p_measured"] >= 0.5 for r in tiny)
        agree = sum(r["agree"] for r in rows)
        parts.append(f"Whether a tiny spread (sigma_b = {smallest:.0e}) breaks symmetry at "
                     f"all depends on activation x loss x data: it did in {broke} of "
                     f"{len(tiny)} [cell/draw entries]({link}{ANCHORS['classify']}) (theory "
                     f"predicted {agree} of {len(rows)}).")
    if calibrate and calibrate.get("loss_pairs"):
        changed, tried = loss_changes(calibrate)
        pair = calibrate["loss_pairs"][0]
        parts.append(f"[Changing the loss]({link}{ANCHORS['loss']}) on {pair['task']}, "
                     f"retuned, changed the verdict in {changed} of {tried} rows.")
    decay = sections.get("weight_decay")
    if decay:
        rows = [r for _, rows, _, _ in decay["tables"] for r in rows]
        healed = sorted({r["cell"].get("weight_decay") for r in rows
                         if r["p_measured"] < 0.5 and r["cell"].get("weight_decay", 0) > 0})
        every = [lam for lam in healed
                 if all(r["p_measured"] < 0.5 for r in rows
                        if r["cell"].get("weight_decay") == lam)]
        activations = {r["cell"].get("activation") for r in rows}
        met = sum(a for _, _, _, per in decay["tables"] for a, _ in per.values())
        cells = sum(n for _, _, _, per in decay["tables"] for _, n in per.values())
        if every:
            parts.append(f"L2 weight decay >= {min(every):g} stopped sigma_b <= "
                         f"{max(r['sigma_b'] for r in rows):g} from breaking it for all "
                         f"{len(activations)} [activations tried]({link}{ANCHORS['decay']}) "
                         f"(theory: {met} of {cells} cells).")
    if not parts:
        return None
    return "**Does it depend on the activation and the cost?** Yes. " + " ".join(parts)


def _q4(sections, link) -> str | None:
    """Training noise that is the same for every unit (minibatches, label noise) in one
    sentence, from the stochastic section's tables."""
    stochastic = sections.get("stochastic")
    if not stochastic:
        return None
    agree, total = 0, 0
    slow, smallest, positive = [], [], True
    healing, label_cells, healing_cells = {}, 0, 0  # activation -> label-noise levels
    for run in stochastic["runs"]:  # every run of a kind pooled into one clause
        cells = run["cells"]
        points = [p for c in cells for p in c["points"]]
        agree += sum(p["agree"] for p in points)
        total += sum(p["n"] for p in points)
        if run["axis"] == "batch_size":
            for c in cells:
                by = {p["value"]: p["median"].median for p in c["points"]}
                least = min((b for b in by if b), default=None)
                if 0 in by and least and math.isfinite(by[least]) \
                        and math.isfinite(by[0]) and by[0] > 0:
                    slow.append(by[least] / by[0])
                    smallest.append(least)
            positive &= all(p["lyapunov"] > 0 for p in points if math.isfinite(p["lyapunov"]))
        else:
            for c in cells:
                label_cells += 1
                levels = [p["value"] for p in c["points"] if p["lyapunov"] < 0]
                if levels:
                    healing_cells += 1
                    healing.setdefault(c["fixed"].get("activation", ""), []).extend(levels)
    clauses = []
    if slow:
        clauses.append(
            f"minibatches slowed the escape (batch size {min(smallest)}: "
            f"{_factor(min(slow))}-{_factor(max(slow))} the full-batch median steps)"
            + (" and healed it nowhere" if positive else " and healed it in some cells"))
    if healing:
        units = " and ".join(f"{a} units".strip() for a in healing)
        levels = [v for values in healing.values() for v in values]
        clauses.append(f"label noise {min(levels):g}-{max(levels):g} made identical {units} "
                       f"an attractor (stochastic collapse) in {healing_cells} of "
                       f"{label_cells} cells")
    if not clauses:
        return None
    return ("**What does noise during training do?** Minibatches and label noise are the same "
            "for every unit, so they cannot break the symmetry, only change its pace: "
            + ", and ".join(clauses) + f"; the theory predicted {agree} of {total} networks' "
            f"breaks ([tables]({link}{ANCHORS['stochastic']})).")


def _q5(sections, link) -> str | None:
    """Hardware noise in one sentence, from the hardware-noise section's cells: the exact
    arithmetic's count, and the plain kernel's breaks and effective sigma_b per dtype."""
    hardware = sections.get("hardware_noise")
    if not hardware:
        return None
    cells = [(r["dtype"], c) for r in hardware["runs"] for c in r["cells"]]
    exact = [c for _, c in cells if c["kernel"] == "exact"]
    plain = [(d, c) for d, c in cells if c["kernel"] == "plain"]
    if not exact or not plain:
        return None
    readings = [f"{c['activation']} {d}: like sigma_b ~{c['sigma_eff']:.0e}" for d, c in plain
                if c["asymmetric"] and not c["bound"] and math.isfinite(c["sigma_eff"])]
    return ("**Can the hardware break the symmetry for you?** Only by accident: exact "
            f"arithmetic broke {sum(c['k'] for c in exact)} of {sum(c['n'] for c in exact)} "
            "networks of identical units, and a kernel that rounds one unit differently broke "
            f"{sum(c['k'] for _, c in plain)} of {sum(c['n'] for _, c in plain)}"
            + (f" ({'; '.join(readings)})" if readings else "")
            + f", a machine-dependent accident, no substitute for choosing sigma_b "
            f"([table]({link}{ANCHORS['hardware']})).")


def _q6(sections, link) -> str | None:
    """Depth in one sentence, from the depth section: per activation, how many hidden layers
    the median network of the deepest run broke at its largest sigma_b, and the theory's count
    against the issue's 5% target."""
    depth = sections.get("depth")
    if not depth or not depth["runs"]:
        return None
    deepest = depth["runs"][-1]
    budget = int(deepest["ds"].attrs["steps"])
    sigma = max(p["sigma_b"] for p in deepest["points"])
    top = [p for p in deepest["points"] if p["sigma_b"] == sigma]
    hidden = deepest["depth"] - 1
    counts = ", ".join(f"{p['activation']} {sum(l['measured'].reached for l in p['layers'])}"
                       for p in top)
    target = depth["target"]
    theory = (f", each layer's median step predicted within 5% at {target['met']} of "
              f"{target['total']} points at depths "
              f"{' and '.join(map(str, target['depths']))}" if target["total"] else "")

    # "from the input up" only where every grid point's layers break in order (a layer that
    # breaks never comes after one that does not)
    def in_order(point):
        medians = [l["measured"].median if l["measured"].reached else math.inf
                   for l in point["layers"]]
        return all(a <= b for a, b in zip(medians, medians[1:]))

    ordered = all(in_order(p) for run in depth["runs"] for p in run["points"])
    return ("**Does it work in deep networks?** Layer by layer"
            + (", from the input up" if ordered else "") + ": with "
            f"constant W and random b in every layer the median depth-{deepest['depth']} "
            f"network broke {counts} of its {hidden} hidden layers within {budget} steps at "
            f"sigma_b = {sigma:.0e}{theory} ([table]({link}{ANCHORS['depth']})).")


def _q7(sections, link) -> str | None:
    """Small weights in one sentence, from the plateau section: the measured plateau
    exponents against r - 2, their independence of sigma_b, and the clocks' order."""
    plateau = sections.get("plateau")
    if not plateau:
        return None
    rows = [(run["depth"], a) for run in plateau["runs"] for a in run["activations"].values()
            if a["predicted"] > 0 and a["exponent"].n >= 2]
    if not rows:
        return None
    by_depth = {}
    for d, a in rows:
        by_depth.setdefault(d, []).append(a["exponent"].mean)
    def span(values):
        low, high = f"{min(values):.2f}", f"{max(values):.2f}"
        return low if low == high else f"{low}-{high}"

    exponents = "; ".join(f"L = {d}: {span(v)} against {d - 2}"
                          for d, v in sorted(by_depth.items()))
    spreads = [r["sigma_spread"] for _, a in rows for r in a["rows"]
               if math.isfinite(r["sigma_spread"])]
    after = sum(r["after"] for run in plateau["runs"] for a in run["activations"].values()
                for r in a["rows"])
    both = sum(r["both"] for run in plateau["runs"] for a in run["activations"].values()
               for r in a["rows"])
    spread = max(spreads, default=0.0)
    same = ("whatever sigma_b" if spread < 0.005
            else f"within {100 * spread:.0f}% whatever sigma_b")
    return ("**What if the weights are small as well?** Then a plateau comes first, growing like "
            f"eps^-(L-2) with all L layers at scale eps (measured exponents {exponents}) "
            f"{same}; layer 1 broke after it in {after} of {both} networks "
            f"([table]({link}{ANCHORS['plateau']})).")


def answer_lines(sections: dict, link: str = "") -> list[str]:
    """The answer block (markers included), or [] when no section it needs is present."""
    calibrate = sections.get("calibrate") or {"pairs": []}
    paragraphs = [p for p in (_q1(calibrate, link), _q2(calibrate, link), _q3(sections, link),
                              _q4(sections, link), _q5(sections, link),
                              _q6(sections, link), _q7(sections, link)) if p]
    if not paragraphs:
        return []
    lines = [START, "## The answer in plain words", ""]
    for paragraph in paragraphs:
        lines += [paragraph, ""]
    return lines + [END, ""]


def words(lines) -> int:
    """Words of an answer block, markdown links counted by their text only."""
    text = re.sub(r"\]\([^)]*\)", "]", "\n".join(lines))
    text = text.replace(START, "").replace(END, "")
    return len(re.findall(r"[^\s]+", text))


def markers(name: str) -> tuple[str, str]:
    """The start and end markers of block ``name`` (:data:`BLOCKS`)."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def block(text: str, name: str = "answer") -> str | None:
    """Block ``name`` of ``text``, markers included (None: not there)."""
    start, end = markers(name)
    found = re.search(re.escape(start) + ".*?" + re.escape(end), text, re.S)
    return found.group(0) if found else None


def sync_readme(readme, report) -> bool:
    """Copy every block of :data:`BLOCKS` of ``report`` into ``readme`` (between the same
    markers, links to the report's own headings re-pointed at its path); True when the README
    changed.

    Raises:
      ValueError: a file without a block's markers.
    """
    readme, report = Path(readme), Path(report)
    source, target = report.read_text(), readme.read_text()
    relative = Path(os.path.relpath(report, readme.parent)).as_posix()
    new = target
    for name in BLOCKS:
        found, there = block(source, name), block(new, name)
        if not found or not there:
            start, end = markers(name)
            raise ValueError(f"both {readme} and {report} need the {start} ... {end} markers")
        text = re.sub(r"\]\(#", f"]({relative}#", found)
        new = new.replace(there, text)
    if new != target:
        readme.write_text(new)
    return new != target


if __name__ == "__main__":  # python -m jaxsym.reporting.answer README.md figures/REPORT.md
    if len(sys.argv) != 3:
        sys.exit("usage: python -m jaxsym.reporting.answer README.md REPORT.md")
    print("README updated" if sync_readme(sys.argv[1], sys.argv[2]) else "README unchanged")
