"""The weight-decay section: L2 decay as a cost-function axis. Per (activation, decay rate)
cell and data draw, the antisymmetric block at the decayed collapsed point and the theory's
P(hidden layer 1 broken) against the measured fraction, with the per-draw agreement count.

Contract: :func:`render` ``(numbers, figures_dir) -> list of markdown lines`` from
:func:`jaxsym.analysis.weight_decay.analyse`; no figure.
"""

from __future__ import annotations

import math

from jaxsym.reporting.classify import explain
from jaxsym.reporting.common import setups

__all__ = ["render"]

DERIVATION = (
    "The optimizer follows L + (lambda/2) ||theta||^2 over every weight and bias (coupled L2 "
    "decay, PyTorch's `SGD(weight_decay=lambda)`). Its Hessian is H + lambda I, and lambda I "
    "maps the antisymmetric subspace to itself, so at any symmetric point the antisymmetric "
    "block is exactly **B_lambda = B + lambda I** (`jaxsym.theory.splitting`): the decay "
    "shifts every antisymmetric curvature up by lambda. But the point moves: at the DECAYED "
    "collapsed point the stationarity conditions R v = -lambda u (u = (w, b), the units' "
    "common incoming vector, v their output weight) leave R = -(lambda/v) u nonzero, and "
    "Schur's complement gives, for one output, B_lambda > 0 iff **S + lambda (I - u u^T / v^2) "
    "> 0**: the shift is lambda orthogonal to u but only lambda (1 - |u|^2/v^2) along u, zero "
    "for a balanced point |u| = |v| (always the case for relu-type units). So decay does not "
    "heal the symmetric point merely because lambda > -lambda_min(S). The prediction per cell "
    "and draw below is the theory's alone: the linearised escape along the decayed symmetric "
    "trajectory (P(broken by the budget), the mechanism), and the block at the decayed "
    "collapsed point (its sign: < 0 a saddle, every sigma_b > 0 breaks eventually; > 0 the "
    "units heal). An entry agrees as in the classification above (both >= 0.9, both <= 0.1, "
    "or the prediction inside the measured 95% Wilson interval); a cell agrees when all its "
    "sigma_b entries do.")


def _end(e) -> str:
    text = f"{e['lambda_min']:+.1e}"
    if not e["reached"]:
        text += f" (not reached: grad {e['grad_norm']:.0e})"
    return text


def _table(ds, rows, ends) -> list[str]:
    sigmas = sorted({r["sigma_b"] for r in rows})
    draws = sorted({r["draw"] for r in rows})
    lines = ["| activation | weight decay | lambda_min(B_lambda) at the decayed collapsed point, "
             "per draw | balance abs(u)/abs(v) | mechanism per draw (theory) | "
             + " | ".join(f"sigma_b = {s:.0e}: predicted/measured P, per draw" for s in sigmas)
             + " |", "|---|---|---|---|---|" + "---|" * len(sigmas)]
    for cell in dict.fromkeys(tuple(r["cell"].items()) for r in rows):
        c = dict(cell)
        mine = [r for r in rows if tuple(r["cell"].items()) == cell]
        e = [ends.get((cell, d)) for d in draws]
        mechs = [next(r for r in mine if r["draw"] == d and r["sigma_b"] == sigmas[0])[
            "prediction"].mechanism for d in draws]
        parts = []
        for sigma in sigmas:
            parts.append(" ".join(
                f"{r['prediction'].p_broken:.2f}/{r['p_measured']:.2f}"
                + ("" if r["agree"] else "**x**")
                for d in draws for r in mine if r["draw"] == d and r["sigma_b"] == sigma))
        balance = " ".join(f"{x['balance']:.2f}" if x and math.isfinite(x["balance"]) else "-"
                           for x in e)
        lines.append(f"| {c.get('activation', ds.attrs.get('activation', ''))} | "
                     f"{c.get('weight_decay', 0.0):g} | "
                     + " ".join(_end(x) if x else "-" for x in e) + f" | {balance} | "
                     + " ".join(mechs) + " | " + " | ".join(parts) + " |")
    return lines


def _sign_summary(rows, ends) -> str:
    """How often the end-point sign alone (saddle: breaks, minimum: heals) matches the measured
    outcome at the smallest sigma_b, over the reached end points."""
    sigma = min(r["sigma_b"] for r in rows)
    hits = total = 0
    for r in rows:
        e = ends.get((tuple(r["cell"].items()), r["draw"]))
        if r["sigma_b"] != sigma or not e or not e["reached"]:
            continue
        total += 1
        hits += (e["lambda_min"] < 0) == (r["p_measured"] >= 0.5)
    return (f"The end-point sign alone (B_lambda's lambda_min < 0: breaks) matches the "
            f"measured P >= 0.5 at sigma_b = {sigma:.0e} in {hits} of {total} (cell, draw) "
            "entries whose decayed collapsed point was reached; it ignores the budget (a "
            "saddle with a small negative curvature breaks after the budget), which the "
            "linearised escape includes.")


def render(numbers, figures_dir) -> list[str]:
    """The section's markdown lines."""
    del figures_dir  # no figure
    lines = ["## Weight decay as a cost-function axis: predicted from theory alone", "",
             DERIVATION, ""]
    target = numbers["target"]
    for ds, rows, ends, per_draw in numbers["tables"]:
        counts = ", ".join(f"draw {d}: **{a} of {n}** ({100 * a / max(n, 1):.0f}%)"
                           for d, (a, n) in per_draw.items())
        met = all(a >= target * n for a, n in per_draw.values())
        agree = sum(r["agree"] for r in rows)
        lines += [f"Cells whose prediction agrees at every sigma_b, per data draw: {counts}; "
                  f"the bar of {100 * target:.0f}% of the cells of every draw is "
                  + ("met." if met else "**not met**.")
                  + f" Over all (cell, draw, sigma_b) entries: {agree} of {len(rows)}. "
                  + _sign_summary(rows, ends), "", *_table(ds, rows, ends), ""]
        wrong = [r for r in rows if not r["agree"]]
        if wrong:
            lines += ["Disagreeing entries, each with the reason the numbers give:", ""]
            lines += [f"- {r['cell'].get('activation', '')}, weight decay "
                      f"{r['cell'].get('weight_decay', 0.0):g}, draw {r['draw']}, sigma_b = "
                      f"{r['sigma_b']:.0e}: predicted {r['prediction'].p_broken:.2f}, measured "
                      f"{r['p_measured']:.2f} [{r['p_low']:.2f}, {r['p_high']:.2f}]: "
                      f"{explain(r)}." for r in wrong]
            lines.append("")
    lines += ["### Setup", "", *setups(ds for ds, *_ in numbers["tables"])]
    return lines
