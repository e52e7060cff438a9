"""The saddle sections: the measured log-law slope against the Hessian at the collapsed saddle,
and (with the width variants) its scaling with the layer width.

Contract: :func:`render_slope` and :func:`render_width` ``(numbers, figures_dir) -> list of
markdown lines`` from :func:`jaxsym.analysis.saddle.analyse_slope` / ``analyse_width``; the
slope section draws ``saddle_slope``.
"""

from __future__ import annotations

import textwrap

import numpy as np

from jaxsym.analysis.common import squeeze_grid
from jaxsym.reporting.common import setup_table
from jaxsym.reporting.plotting import PALETTE, plt, save

__all__ = ["render_slope", "render_width"]


def _saddle_text(run) -> str:
    ds, analysis, fits, finished = run["ds"], run["analysis"], run["fits"], run["finished"]
    spec = analysis.spectrum
    width = ds.attrs["layer_sizes"][1]
    rows = []
    for name, label in (("time_to_break", "steps to break"),
                        ("time_to_converge", "steps to converge")):
        fit = fits[name]
        rows.append(f"| {label} | {fit.b:.1f} [{fit.b_low:.1f}, {fit.b_high:.1f}] | "
                    f"{analysis.slope:.1f} | {100 * (fit.b / analysis.slope - 1):+.1f}% |")
    return "\n".join([
        f"Gradient descent from the symmetric initialisation (sigma_b = 0, float64, each iterate "
        f"projected back onto the symmetric subspace) reaches the collapsed critical point after "
        f"{analysis.steps_to_saddle} steps (gradient norm {spec.grad_norm:.1e}, loss "
        f"{spec.loss:.5f}: the best a one-unit network does). Its Hessian (`jax.hessian`, "
        f"{spec.eigenvalues.size} parameters) has the most negative eigenvalue lambda_min = "
        f"{spec.lambda_min:.6f} with multiplicity {spec.multiplicity} (width - 1 = {width - 1}), "
        f"and its eigenvectors are antisymmetric across units (symmetric part "
        f"{spec.symmetric_fraction:.0e}): the saddle is escaped by units moving apart. Gradient "
        f"descent grows that direction by 1 + lr |lambda_min| per step, which predicts "
        f"b = ln 10 / ln(1 + lr |lambda_min|) = {analysis.slope:.2f} steps per decade of smaller "
        f"sigma_b. The sweep (sigma_b in [{ds.sigma_b.values.min():.0e}, "
        f"{ds.sigma_b.values.max():.0e}], {ds.sizes['seed']} independent seeds each, "
        f"{100 * finished:.0f}% broke and converged) measures:", "",
        "| fitted on | measured slope [95% CI] | predicted | difference |", "|---|---|---|---|",
        *rows, "",
        "The prediction holds only once the symmetric trajectory is at the saddle: on the way "
        "there the local growth rate is larger (right panel), so larger sigma_b, or larger "
        "initial weights, escape earlier and give a smaller slope (the `escape` experiment's "
        "fit above is such a case). With heavy-ball momentum beta the growth factor is the "
        "largest root of r^2 - (1 + beta + lr|lambda|) r + beta, about 1 + lr|lambda|/(1 - beta); "
        "with Adam there is no constant rate: as the gradient vanishes near the saddle its "
        "second-moment estimate decays and its step lr / (sqrt(v) + eps) keeps growing, so the "
        "escape accelerates (both checked in `tests/test_saddle.py`); the linearised escape "
        "(forward-mode through the optimizer's update, next section) still predicts every "
        "network's break time under momentum and Adam (`tests/test_escape.py`).",])


def _fit_cell(fit) -> str:
    if fit is None:
        return "n/a"
    return (f"{fit.b:.0f} [{fit.b_low:.0f}, {fit.b_high:.0f}] over [{fit.sigma_min:.0e}, "
            f"{fit.sigma_max:.0e}]")


def _curves_text(run) -> list[str]:
    """The log-law of every experiment that trains this network, stated once: the asymptote
    (smallest cells that are conclusions), the window fit and the curvature check, against the
    Hessian's slope."""
    from jaxsym.analysis.common import ROUNDING_ROUNDOFFS
    from jaxsym.analysis.loglaw import ASYMPTOTE_CELLS, MIN_BROKEN, WINDOW_MAX

    curves, predicted = run.get("curves") or [], run["analysis"].slope
    if not curves:
        return []
    lines = [
        "### One log-law slope: the small-sigma_b asymptote of every experiment on this network",
        "",
        "The log-law is an asymptote, so every experiment that trains this network on the same "
        "training set (any constant weight c, budget or dtype: the collapsed saddle does not "
        "depend on them) is stated the same way, on the steps to break: the **asymptote** is "
        f"the least-squares slope over its {ASYMPTOTE_CELLS} smallest cells that are "
        f"conclusions (at or above {ROUNDING_ROUNDOFFS:g} unit roundoffs of its dtype, >= "
        f"{100 * MIN_BROKEN:g}% broken), the **window fit** the same over every such cell up "
        f"to {WINDOW_MAX:g}, and the **curvature check** a quadratic in log10(1/sigma_b) over "
        "the window: the change of the local slope across it (positive: steeper at small "
        "sigma_b), with a stratified bootstrap 95% CI; the curve **bends** when that CI "
        "excludes 0, and then the window fit is not the log-law slope. Noise-dose rows are "
        "against the per-step relative noise instead of "
        "sigma_b.", "",
        "| experiment | dtype | c | against | seeds | asymptote (steps/decade) [95% CI] | vs "
        "Hessian | window fit [95% CI] | slope change across the window [95% CI] | bends |",
        "|---|---|---|---|---|---|---|---|---|---|"]
    near = []
    for row in curves:
        c = row["curve"]
        a = c.asymptote
        diff = f"{100 * (a.b / predicted - 1):+.1f}%" if a is not None else "n/a"
        if a is not None:
            near.append((row["experiment"], row["dtype"], a, a.b_low <= predicted <= a.b_high))
        curv = (f"{c.curvature[0]:+.0f} [{c.curvature[1]:+.0f}, {c.curvature[2]:+.0f}]"
                if c.curvature is not None else "n/a (< 4 cells)")
        lines.append(f"| {row['experiment']} | {row['dtype']} | {row['weight_value']:g} | "
                     f"{row['variable']} | {row['seeds']} | {_fit_cell(a)} | {diff} | "
                     f"{_fit_cell(c.window) if c.window is not a else 'same cells'} | {curv} | "
                     f"{'yes' if c.bends else 'no'} |")
    lines.append("")
    if near:
        inside = [n for n in near if n[3]]
        spread = [n[2].b for n in near]
        lines += [
            f"The Hessian predicts {predicted:.1f} steps per decade. The asymptotes of "
            f"{len(near)} curves range from {min(spread):.0f} to {max(spread):.0f} "
            f"({100 * (min(spread) / predicted - 1):+.0f}% to "
            f"{100 * (max(spread) / predicted - 1):+.0f}%); the prediction lies inside the 95% "
            f"CI of {len(inside)} of them. The window fits of curves that bend are not the "
            "slope of the log-law: they mix the saddle's rate with the faster escape on the way "
            "to it.", ""]
    return lines


def _width_text(numbers) -> str:
    rows, tolerance = numbers["rows"], numbers["tolerance"]
    lines = ["| m | lr | lambda_min | multiplicity | m lambda_min | predicted slope (Hessian) | "
             "predicted slope (linearised escape) | measured slope [95% CI] | measured vs "
             "escape | measured vs Hessian | networks within 1% or 2 steps of their own "
             "prediction | largest error above / below the floor (steps) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    within = 0
    for r in rows:
        fit, hess, esc = r["fit"], r["hessian_slope"], r["escape_slope"]
        d_esc = fit.b / esc - 1 if esc else float("nan")
        d_hess = fit.b / hess - 1 if hess else float("nan")
        within += abs(d_esc) <= tolerance
        lines.append(
            f"| {r['width']} | {r['lr']:g} | {r['lambda_min']:.6f} | {r['multiplicity']} | "
            f"{r['width'] * r['lambda_min']:.6f} | {hess:.1f} | "
            + (f"{esc:.1f}" if esc else "n/a")
            + f" | {fit.b:.1f} [{fit.b_low:.1f}, {fit.b_high:.1f}] | {100 * d_esc:+.1f}% | "
            f"{100 * d_hess:+.1f}% | {r['networks_ok']} of {r['networks_above']} | "
            f"{r['error_above']:.0f} / "
            + ("n/a" if r["error_below"] is None else f"{r['error_below']:.0f}") + " |")
    return "\n".join([
        "At the collapsed point of an m-unit layer the units share the one-unit optimum's "
        "output weight (v = v_1 / m), so the splitting matrix, and with one output the whole "
        "antisymmetric block, scales as 1/m: lambda_min = lambda_min(S_1) / m with multiplicity "
        "m - 1 (`jaxsym.theory.splitting`, pinned to `jax.hessian` in tests). The escape rate "
        "ln(1 + lr |lambda_min|) is therefore ~ lr / m: the runs below scale lr with m (up to "
        "0.2, the largest step at which the m = 32 symmetric trajectory still converges), so "
        "m lambda_min is constant and the slope is set by lr / m. The saddle_slope sweep "
        f"(sigma_b in [1e-14, 1e-10]) at every width, slopes fitted over sigma_b >= "
        f"{rows[0]['floor']:.0e} (the decade of {numbers['floor_roundoffs']:.0e} unit roundoffs: "
        "below it the rounding of thousands of steps of non-identical units adds a deviation "
        "of the same order, and single networks break up to hundreds of steps away from their "
        "prediction, last column); each network is also checked against the prediction from "
        f"its OWN initial bias deviation, T(sigma_b ||d||). Measured within "
        f"{100 * tolerance:g}% of the linearised-escape prediction at {within} of "
        f"{len(rows)} widths:", "", *lines])


def fig_saddle(run):
    """Left: per-sigma median steps to break and to converge (bars: interquartile range) vs
    log10(1/sigma_b), the fitted log-law lines, and the predicted slope (dotted, through the
    fitted line's centre). Right: the local slope ``ln 10 / log growth`` of an antisymmetric
    perturbation along the symmetric trajectory, against the prediction, with the range of
    measured steps to break shaded: the slope matches where the escapes happen after the
    approach to the saddle.

    ``run``: one run of :func:`jaxsym.analysis.saddle.analyse_slope` (its ``analysis``, the
    theory's SaddleAnalysis, ``fits`` of both times and their ``quartiles``).
    """
    ds, analysis, fits = squeeze_grid(run["ds"]), run["analysis"], run["fits"]
    sigma = ds.sigma_b.values
    x = np.log10(1.0 / sigma)
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.2, 3.3))
    for i, (name, label) in enumerate((("time_to_break", "break"),
                                       ("time_to_converge", "converge"))):
        q1, med, q3 = run["quartiles"][name]
        left.errorbar(x, med, yerr=[med - q1, q3 - med], fmt="o", ms=3.5, capsize=2,
                      color=PALETTE[i], label=f"median step to {label}")
        fit = fits[name]
        line = fit.a + fit.b * x
        left.plot(x, line, "-", color=PALETTE[i], lw=0.9,
                  label=f"fit: {fit.b:.1f} [{fit.b_low:.1f}, {fit.b_high:.1f}] steps/decade")
        centre = x.mean()
        left.plot(x, fit.a + fit.b * centre + analysis.slope * (x - centre), ":", color="black",
                  lw=1.0, label=f"Hessian prediction: {analysis.slope:.1f}" if i == 0 else None)
    left.set_xlabel("log10(1 / sigma_b)")
    left.set_ylabel("training step")
    left.legend(loc="upper left", fontsize=6.5)
    steps = np.arange(1, len(analysis.local_slope) + 1)
    right.plot(steps, analysis.local_slope, color=PALETTE[2], lw=1.0,
               label="local slope along the symmetric trajectory")
    right.axhline(analysis.slope, color="black", ls=":", lw=1.0,
                  label="ln 10 / ln(1 + lr |lambda_min|)")
    brk = ds.time_to_break.values
    right.axvspan(brk.min(), brk.max(), color=PALETTE[0], alpha=0.12, lw=0,
                  label="measured steps to break")
    right.set_ylim(0, 2 * analysis.slope)
    right.set_xlim(0, steps[-1])
    right.set_xlabel("training step")
    right.set_ylabel("steps per decade")
    right.legend(loc="lower right", fontsize=6.5)
    fig.suptitle("\n".join(textwrap.wrap(
        f"Log-law slope vs the Hessian at the collapsed saddle (lambda_min = "
        f"{analysis.spectrum.lambda_min:.4g}, multiplicity {analysis.spectrum.multiplicity}); "
        f"{ds.attrs['dtype']}, {ds.sizes['seed']} seeds per sigma_b", 110)), fontsize=8.5)
    fig.tight_layout()
    return fig


def _invalid(analysis) -> list[str]:
    if analysis.reached:
        return []
    return [f"**WARNING: the prediction below is not valid.** Gradient descent from the "
            f"symmetric init did not reach the collapsed point (|grad| = "
            f"{analysis.grad_norm:.1e} after {analysis.steps_to_saddle} steps): the Hessian "
            "there does not describe the trajectory the sweep follows.", ""]


def render_slope(numbers, figures_dir) -> list[str]:
    """The log-law slope section of every saddle_slope run (and its figure)."""
    lines = []
    for run in numbers["runs"]:
        save(fig_saddle(run), figures_dir, "saddle_slope")
        lines += ["## The log-law slope from the Hessian at the symmetric saddle", "",
                  *_invalid(run["analysis"]), _saddle_text(run), "", *_curves_text(run),
                  "### Setup", "",
                  setup_table(run["ds"]), "", "![saddle slope](saddle_slope.png)", ""]
    return lines


def render_width(numbers, figures_dir) -> list[str]:
    """The width-scaling table."""
    del figures_dir  # no figure
    return ["## Width scaling of the saddle", "", _width_text(numbers), ""]
