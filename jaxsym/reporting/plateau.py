"""The plateau section: the small-weight plateau (Rawal & DeWeese's eps^-(r-2)) and the
symmetry break (the log law in sigma_b), two clocks measured in one experiment.

Contract: :func:`render` ``(numbers, figures_dir) -> list of markdown lines`` from
:func:`jaxsym.analysis.plateau.analyse`; draws ``plateau``.
"""

from __future__ import annotations

import math

import numpy as np

from jaxsym.analysis import stats
from jaxsym.analysis.plateau import EXPONENT_TOLERANCE
from jaxsym.reporting.common import description, setup_table
from jaxsym.reporting.plotting import PALETTE, plt, save

__all__ = ["render"]


def _median(m, budget) -> str:
    return stats.format_median(m, budget)


def _exponent(a) -> str:
    e = a["exponent"]
    if e.n < 2:
        return "n/a (fewer than 2 draws reach every plateau's end)"
    return f"{e.mean:.2f} [{e.low:.2f}, {e.high:.2f}]"


def _verdict(a) -> str:
    if a["ok"] is None:
        return ("not tested: log(1/eps) has local exponent c / tau, 0 only as eps -> 0")
    within = f"within {100 * EXPONENT_TOLERANCE:.0f}%" if a["close"] else (
        f"NOT within {100 * EXPONENT_TOLERANCE:.0f}%")
    if a["ok"]:
        return f"inside the CI; {within}"
    return f"outside the CI ({a['distance']:.2f} away); {within}"


def _delay(a) -> str:
    d = a["delay"]
    if not (math.isfinite(d["plateau"]) and math.isfinite(d["break"])):
        return "n/a (a median not reached)"
    return f"{d['plateau']:+.0f} / {d['break']:+.0f}"


def _slopes(a) -> str:
    fits = [row["log_law"] for row in a["rows"] if row["log_law"] is not None]
    if not fits:
        return "n/a"
    return f"{min(f.b for f in fits):.0f} .. {max(f.b for f in fits):.0f}"


def _spread(a) -> str:
    spreads = [row["sigma_spread"] for row in a["rows"]]
    finite = [s for s in spreads if math.isfinite(s)]
    if not finite:
        return "n/a"
    return f"{100 * max(finite):.1f}%" + ("" if len(finite) == len(spreads)
                                          else " (some medians not reached)")


def _summary_table(runs) -> list[str]:
    lines = ["| depth L (r = L small layers) | activation | plateau exponent predicted (r - 2) "
             "| measured, mean over draws [95% CI] | verdict | plateau's end across sigma_b at "
             "one eps: largest spread | layer-1 log-law slope over eps (steps per decade of "
             "sigma_b) | layer 1 breaks after the plateau's end | from the largest eps to the "
             "smallest: plateau's end / layer-1 break at the smallest sigma_b (steps) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        for activation, a in run["activations"].items():
            after = sum(r["after"] for r in a["rows"])
            both = sum(r["both"] for r in a["rows"])
            predicted = ("0 (log(1/eps))" if a["predicted"] == 0 else str(a["predicted"]))
            lines.append(f"| {run['depth']} | {activation} | {predicted} | {_exponent(a)} "
                         f"({a['n_draws']} draws, eps {a['fit_eps'][0]:g} .. "
                         f"{a['fit_eps'][1]:g}) | {_verdict(a)} | {_spread(a)} | "
                         f"{_slopes(a)} | {after} of {both} | {_delay(a)} |")
    return lines


def _target_line(target) -> str:
    if not target["total"]:
        return ("Rawal & DeWeese's exponent r - 2: no run with r >= 3 here (r = 2 is "
                "logarithmic, not a power).")
    text = (f"Rawal & DeWeese's exponent r - 2 lies inside the 95% CI of the measured one at "
            f"{target['met']} of {target['total']} (depth >= 3, activation) rows")
    if target["misses"]:
        text += " (not at " + "; ".join(f"L = {d} {name}, CI {distance:.2f} away"
                                        for d, name, distance in target["misses"]) + ")"
    return (text + f", and the measured exponent is within {100 * EXPONENT_TOLERANCE:.0f}% of "
            f"r - 2 at {target['close']} of {target['total']} (the law is for eps -> 0; the "
            "local exponents show the approach).")


def _run_table(run) -> list[str]:
    budget = int(run["ds"].attrs["steps"])
    first = next(iter(run["activations"].values()))
    sigmas = first["sigmas"]
    lines = ["| activation | eps | plateau's end: median [95% CI] | local exponent | "
             + " | ".join(f"layer 1 breaks, sigma_b {s:.0e}" for s in sigmas)
             + " | log-law slope [95% CI] |", "|---|---|---|---|" + "---|" * len(sigmas) + "---|"]
    for activation, a in run["activations"].items():
        for row in a["rows"]:
            local = "" if not math.isfinite(row["local"]) else f"{row['local']:.2f}"
            fit = row["log_law"]
            slope = "n/a" if fit is None else f"{fit.b:.0f} [{fit.b_low:.0f}, {fit.b_high:.0f}]"
            lines.append(f"| {activation} | {row['eps']:g} | "
                         f"{_median(row['plateau'], budget)} | {local} | "
                         + " | ".join(_median(b, budget) for b in row["breaks"])
                         + f" | {slope} |")
    return lines


def _figure(runs):
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.4, 4.0))
    i = 0
    for run in runs:
        for activation, a in run["activations"].items():
            color = PALETTE[i % len(PALETTE)]
            i += 1
            label = f"L = {run['depth']}, {activation}"
            eps = np.array([r["eps"] for r in a["rows"]])
            tau = np.array([r["plateau"].median if r["plateau"].reached else np.nan
                            for r in a["rows"]])
            left.plot(eps, tau, "o-", color=color, ms=3.5, lw=1, label=label)
            if a["predicted"] > 0 and np.isfinite(tau[-1]):
                ref = tau[-1] * (eps / eps[-1]) ** (-a["predicted"])
                left.plot(eps, ref, "--", color=color, lw=0.7)
            fits = [(r["eps"], r["log_law"]) for r in a["rows"] if r["log_law"] is not None]
            if fits:
                x = np.array([e for e, _ in fits])
                b = np.array([f.b for _, f in fits])
                err = np.array([[f.b - f.b_low for _, f in fits],
                                [f.b_high - f.b for _, f in fits]])
                right.errorbar(x, b, yerr=np.clip(err, 0, None), fmt="o-", color=color,
                               ms=3.5, lw=1, capsize=2, label=label)
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel("weight scale eps (every layer)")
    left.set_yscale("log")
    left.set_ylabel("plateau's end: median step (loss <= threshold)")
    left.set_title("Plateau; dashed: slope -(r - 2) (Rawal & DeWeese)", fontsize=8.5)
    right.set_ylabel("layer-1 break: log-law slope (steps per decade of sigma_b)")
    right.set_title("Symmetry break: the log law's slope at each eps", fontsize=8.5)
    left.legend(fontsize=6.5)
    fig.tight_layout()
    return fig


def render(numbers, figures_dir) -> list[str]:
    """The section's markdown lines (and the ``plateau`` figure)."""
    runs = numbers["runs"]
    if not runs:
        return []
    save(_figure(runs), figures_dir, "plateau")
    lines = ["## Small weights: the plateau and the break, two clocks", "",
             description(runs[0]["ds"]), "",
             "Every weight layer, the output layer too, starts constant at the same small scale "
             "eps (eps / sqrt(fan_in)); the hidden biases are N(0, sigma_b^2). Two times are "
             "measured on every network: the *plateau's end*, the first step at which the "
             "training loss falls below the run's loss threshold (about half the plateau "
             "loss), and hidden layer 1's *break* (its W's direction diversity above the "
             "threshold). Rawal & DeWeese (2026) predict, on the symmetric submanifold, a "
             "plateau of Theta(eps^-(r-2)) steps with r layers at the small scale (here r = L, "
             "the number of weight layers; r = 2: log(1/eps)); its exponent is fitted per data "
             "draw over the smallest eps (the draws are the independent units: within a draw "
             "the networks differ only in their biases) and stated as the mean over draws with "
             "its Student-t 95% CI. The break's log law, T = a + b log10(1/sigma_b), is fitted "
             "at each eps (bootstrap CI).", "", _target_line(numbers["target"]), "",
             *_summary_table(runs), "",
             "![plateau](plateau.png)", ""]
    for run in runs:
        lines += [f"### L = {run['depth']} weight layers", "",
                  "Plateau's end pooled over sigma_b; local exponent: ln(tau ratio) / ln(eps "
                  "ratio) between this eps and the one above.", "", *_run_table(run), "",
                  "Setup:", "", setup_table(run["ds"]), ""]
    return lines
