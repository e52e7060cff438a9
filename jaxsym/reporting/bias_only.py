"""The bias-only section: the mechanism stated once, the measured answer per experiment, the
P(broken) and time-to-converge figures, and one results table per experiment.

Contract: :func:`render` ``(numbers, figures_dir) -> list of markdown lines`` from
:func:`jaxsym.analysis.bias_only.analyse`; draws ``p_broken``, ``time_to_converge`` and
``survival_<experiment>``.
"""

from __future__ import annotations

import textwrap

import numpy as np

from jaxsym.analysis import stats
from jaxsym.analysis.bias_only import FIT_SIGMA_RANGE, survival_activation
from jaxsym.analysis.common import below_rounding
from jaxsym.reporting.common import (LOSS_LABELS, MODE_LABELS, ROUNDING_MARK, description,
                                     p_cell, score_cell, setup_table, sigma_fit_cell, steps)
from jaxsym.reporting.plotting import (PALETTE, finish, log_axis, plt, save, seeds_label,
                                       sigma_positions, title)

__all__ = ["MECHANISM", "render"]

#: the mechanism, stated once (theory, no measured numbers: those follow it)
MECHANISM = (
    "Random biases alone *can* break the symmetry; whether and how fast is predicted by the "
    "mechanism, cell by cell (sections 'The answer, predicted' and 'Which activation x loss x "
    "task breaks' below). With constant nonzero weights every hidden unit computes "
    "g(w.x + b_j), and the bias deviations d_j (d orthogonal to the all-ones vector) are an "
    "antisymmetric perturbation of the symmetric network. (1) **The activation's curvature.** "
    "To first order unit j moves by d_j u_t for one per-unit vector u_t; at the collapsed "
    "point the growth of u_t is set by the splitting matrix S = sum_n (dl/df_n . v) g''(z_n) "
    "x~_n x~_n^T: a negative eigenvalue (possible only where g'' != 0: tanh, sigmoid, gelu, "
    "sin, erf, ...) makes the symmetric point a saddle, every sigma_b > 0 escapes and each "
    "decade less costs a fixed number of steps (the log-law, slope ln 10 / ln(1 + lr "
    "|lambda_min|), ~ m / lr with m units); where the perturbation instead decays, small "
    "biases heal. (2) **The loss** enters through dl/df in S and through the path the "
    "symmetric network takes to its end point: the same activation can escape under one loss "
    "and heal under another, and which one happens can change with the training set (the data "
    "draw). (3) **Relu-type units** have g'' = 0 almost everywhere: no splitting and no "
    "log-law; they separate only through the output-weight coupling on the way (a transient) "
    "or through samples whose pre-activations lie within the bias spread of the kink, "
    "m sum_n Phi(-|z_n| / sigma_b) of them, negligible for small sigma_b. (4) **Symmetric data** "
    "(xor's mirror symmetry, shared by constant weights) can make the deviation grow along the "
    "rows (units differ in norm, not direction): the directions then separate only at second "
    "order. (5) **W = 0** is a different trap: the layers unlock one per step from the output "
    "down and each unit's first update is parallel to the others' (rank one), relu-type units "
    "with b_j < 0 are dead, and whether the layer ever diversifies depends on g. (6) **Deeper "
    "networks**: the upper hidden layers stay rank one to first order (their rows and "
    "deviations are constant across their inputs), so they break late or never even when the "
    "first layer breaks. A linear activation can break the parameter symmetry but gains "
    "nothing from it.")


def _threshold(sigma, row) -> str:
    """A sigma_b threshold, marked when it lies below the rounding limit of the row's dtype."""
    if sigma is None:
        return "none"
    return f"{sigma:g}" + (f" {ROUNDING_MARK}" if below_rounding(sigma, row.get("dtype"))
                           else "")


def _table(rows) -> str:
    head = ("| weight init | activation | P(broken), sigma_b = 0 | P(broken), largest sigma_b | "
            "P(fn broken), sigma_b = 0 | P(fn broken), largest sigma_b | "
            "smallest sigma_b with observed P >= 0.9 (no CI) | sigma_90 [95% CI] (logistic) | "
            "smallest sigma_b with Wilson lower bound >= 0.9 | "
            "median steps to converge, largest sigma_b | "
            "Glorot baseline (b = 0) | slope b (steps/decade) | "
            "P(converged), sigma_b = 0 | test score, sigma_b = 0 | "
            "test score, largest sigma_b | test score, Glorot |")
    lines = [head, "|" + "---|" * 16]
    for r in rows:
        fit = r["fit"]
        slope = (f"{fit.b + 0:.1f} [{fit.b_low + 0:.1f}, {fit.b_high + 0:.1f}]" if fit else "n/a")
        glorot = stats.format_median(r["median_glorot"], r["budget"]) if "median_glorot" in r \
            else "n/a"
        sigma_p90 = _threshold(r["sigma_p90"], r)
        fit_cell = sigma_fit_cell(r["sigma_90_fit"]) if "sigma_90_fit" in r else "n/a"
        if "sigma_90_fit" in r and r["sigma_90_fit"].status != "never" and below_rounding(
                r["sigma_90_fit"].value, r.get("dtype")):
            fit_cell += f" {ROUNDING_MARK}"
        wilson = _threshold(r.get("sigma_p90_wilson"), r)
        lines.append(
            f"| {MODE_LABELS.get(r['weight_mode'], r['weight_mode'])} | {r['activation']} | "
            f"{p_cell(r['p_broken_zero'])} | {p_cell(r['p_broken_top'])} | "
            f"{p_cell(r.get('p_functional_zero'))} | {p_cell(r.get('p_functional_top'))} | "
            f"{sigma_p90} | {fit_cell} | {wilson} | "
            f"{stats.format_median(r['median_top'], r['budget'])} | {glorot} | {slope} | "
            f"{p_cell(r.get('p_converged_zero'))} | "
            + " | ".join(score_cell(r.get(key), r.get("classification", False))
                         for key in ("test_zero", "test_top", "test_glorot")) + " |")
    return "\n".join(lines)


def _mode_answer(name, loss, mode, mode_rows) -> str:
    breaks = [r for r in mode_rows if r["sigma_p90"] is not None]
    never = [r["activation"] for r in mode_rows if r["p_broken_top"][0] < 0.1]
    zero_ok = all(r["p_broken_zero"] is None or r["p_broken_zero"][0] == 0 for r in mode_rows)
    text = f"- **{name}** ({LOSS_LABELS.get(loss, loss)}), {MODE_LABELS[mode]}: "
    rounding = [r["activation"] for r in mode_rows
                if r["p_broken_zero"] is not None and r["p_broken_zero"][0] > 0]
    text += ("with sigma_b = 0 no network broke symmetry; " if zero_ok else
             "at sigma_b = 0 (identical units) " + ", ".join(rounding) + " still broke "
             "symmetry: float rounding noise, amplified at the unstable symmetric saddle; ")
    if breaks:
        text += ("random biases alone broke symmetry (P >= 0.9) for "
                 + ", ".join(f"{r['activation']} (from sigma_b = {_threshold(r['sigma_p90'], r)})"
                             for r in breaks) + "; ")
    if never:
        text += "they did not for " + ", ".join(never) + "; "
    conv = [r for r in mode_rows if r["median_top"].reached and "median_glorot" in r]
    if conv:
        text += ("median steps to converge at the largest sigma_b vs the Glorot baseline: "
                 + ", ".join(f"{r['activation']} {r['median_top'].median:.0f} vs "
                             f"{stats.format_median(r['median_glorot'], r['budget'])}"
                             for r in conv) + "; ")
    text += _disagreement(mode_rows)
    text += _collapsed_learners(mode_rows)
    fitted = [r for r in mode_rows if r["fit"] is not None]
    if fitted:
        text += ("each decade less sigma_b costs " + ", ".join(
            f"{steps(r['fit'].b)} [{steps(r['fit'].b_low)}, {steps(r['fit'].b_high)}]"
            f" steps ({r['activation']})" for r in fitted) + ".")
    return text.rstrip("; ") + ("" if text.endswith(".") else ".")


def _disagreement(mode_rows) -> str:
    """Where the two metrics disagree at the largest sigma_b (their Wilson intervals do not
    overlap): the units compute different functions while W's rows stay parallel, or the
    reverse."""
    fn_only = [r for r in mode_rows if r.get("p_functional_top")
               and r["p_functional_top"][1] > r["p_broken_top"][2]]
    w_only = [r for r in mode_rows if r.get("p_functional_top")
              and r["p_broken_top"][1] > r["p_functional_top"][2]]
    text = ""
    if fn_only:
        text += ("at the largest sigma_b the units compute different functions although W's "
                 "rows stay parallel (distinct biases on one direction) for " + ", ".join(
                     f"{r['activation']} (P(fn broken) {r['p_functional_top'][0]:.2f} vs "
                     f"P(broken) {r['p_broken_top'][0]:.2f})" for r in fn_only) + "; ")
    if w_only:
        text += ("W's rows separate but the units end up computing one function (up to "
                 "constants) for " + ", ".join(r["activation"] for r in w_only) + "; ")
    return text


def _collapsed_learners(mode_rows) -> str:
    """Where identical units (sigma_b = 0: the symmetry intact, every unit the same function)
    learned the task anyway (:func:`jaxsym.analysis.bias_only.summarize`'s
    ``collapsed_learns``): breaking the symmetry and learning are then different questions,
    the collapsed network itself fits the task (e.g. a non-monotone gelu unit fits xor along
    (1, 1))."""
    learned = [r for r in mode_rows if r.get("collapsed_learns")]
    if not learned:
        return ""
    what = "test accuracy" if learned[0].get("classification") else "test loss"
    return ("with identical units (sigma_b = 0, the symmetry intact) the collapsed network "
            "learned the task anyway for " + ", ".join(
                f"{r['activation']} ({what} "
                f"{score_cell(r['test_zero'], r.get('classification', False))} vs Glorot "
                f"{score_cell(r.get('test_glorot'), r.get('classification', False))}, "
                f"P(converged) {p_cell(r['p_converged_zero'])})"
                for r in learned) + ": there learning does not need broken symmetry; ")


def _answer(rows_by_experiment) -> str:
    """Plain-language findings, each sentence built from the measured numbers."""
    out = []
    for name, rows in rows_by_experiment.items():
        for mode in ("constant", "zero"):
            mode_rows = [r for r in rows if r["weight_mode"] == mode]
            if mode_rows:
                out.append(_mode_answer(name, rows[0]["loss"], mode, mode_rows))
    return "\n".join(out)


def _grid(n_panels, height, sharey=False):
    """Two columns of panels, ``height`` inches per row."""
    rows = n_panels // 2 + n_panels % 2
    return plt.subplots(rows, 2, squeeze=False, figsize=(7.2, height * rows), sharey=sharey)


def _probability_panel(ax, p, panel, ylabel, glorot=None) -> None:
    """One panel of P(event) vs sigma_b with Wilson bands: sigma_b > 0 joined by a line,
    sigma_b = 0 (identical units) its own square marker; ``glorot``: ``{activation: P}`` of
    the Glorot baseline, dashed."""
    sigma = p.sigma_b.values
    x = sigma_positions(sigma)
    positive = sigma > 0
    for i, act in enumerate(p.activation.values):
        one = p.sel(activation=act)
        ax.plot(x[positive], one.p.values[positive], "o-", ms=3, color=PALETTE[i],
                label=str(act))
        ax.fill_between(x[positive], one.low.values[positive], one.high.values[positive],
                        color=PALETTE[i], alpha=0.18, lw=0)
        ax.plot(x[~positive], one.p.values[~positive], "s", ms=4, color=PALETTE[i])
        if glorot is not None and str(act) in glorot:
            ax.axhline(glorot[str(act)], color=PALETTE[i], lw=0.8, ls="--")
    if glorot is not None:
        ax.plot([], [], "k--", lw=0.8, label="Glorot baseline (b = 0)")
    ax.plot([], [], "ks", ms=4, label="sigma_b = 0 (identical units)")
    log_axis(ax, sigma)
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel(ylabel)
    ax.set_title(title(panel["ds"], panel["mode"]))


def fig_p_broken(panels, datasets):
    """P(symmetry broken by the step budget) vs sigma_b, Wilson 95% bands; one line per
    activation, one panel per (experiment, weight mode)."""
    fig, axes = _grid(len(panels), 2.6, sharey=True)
    for ax, panel in zip(axes.flat, panels):
        _probability_panel(ax, panel["p_broken"], panel, "P(broken by step budget)")
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    finish(fig, axes, f"Probability that random biases break symmetry (s2/s1 > "
           f"{datasets[0].attrs['diversity_threshold']:g} in every hidden layer) by the step "
           f"budget; {seeds_label(datasets)} seeds per grid point; bands: 95% Wilson intervals; "
           "squares: sigma_b = 0")
    return fig


def fig_p_converged(panels, datasets):
    """The companion of the time-to-converge figure: P(converged by the step budget) vs
    sigma_b with Wilson bands, the Glorot baseline's dashed."""
    fig, axes = _grid(len(panels), 2.6, sharey=True)
    for ax, panel in zip(axes.flat, panels):
        _probability_panel(ax, panel["p_converged"], panel, "P(converged by step budget)",
                           panel.get("glorot_p_converged"))
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    finish(fig, axes, "Probability of reaching the loss threshold within the step budget; "
           f"{seeds_label(datasets)} seeds per grid point; bands: 95% Wilson intervals; "
           "dashed: Glorot baseline (b = 0); squares: sigma_b = 0")
    return fig


def _converge_panel(ax, panel, fits) -> None:
    ds, med_ds = panel["ds"], panel["converge"]
    sigma = med_ds.sigma_b.values
    x = sigma_positions(sigma)
    budget = ds.attrs["steps"]
    for i, act in enumerate(med_ds.activation.values):
        one = med_ds.sel(activation=act)
        med, low = one.median_steps.values, one.low.values
        high = np.minimum(one.high.values, budget)
        reached = np.isfinite(med)
        zero = sigma == 0
        line = reached & ~zero
        ax.errorbar(x[line], med[line], yerr=[med[line] - low[line], high[line] - med[line]],
                    fmt="o-", ms=3, lw=1, capsize=2, color=PALETTE[i], label=str(act))
        point = reached & zero
        ax.errorbar(x[point], med[point], yerr=[med[point] - low[point],
                    high[point] - med[point]], fmt="s", ms=4, capsize=2, color=PALETTE[i])
        ax.plot(x[~reached], np.full((~reached).sum(), budget), "o", ms=4, mfc="none",
                color=PALETTE[i])
        fit = fits.get((ds.attrs["name"], panel["mode"], str(act)))
        if fit is not None:
            s = np.logspace(np.log10(fit.sigma_min), np.log10(fit.sigma_max), 20)
            ax.plot(s, fit.a + fit.b * np.log10(1 / s), "--", color=PALETTE[i], lw=0.8)
        base = (panel["glorot"] or {}).get(str(act))
        if base is not None and base.reached:
            ax.axhspan(base.low, min(base.high, budget), color=PALETTE[i], alpha=0.08, lw=0)
    if panel["glorot"]:
        ax.fill_between([], [], [], color="grey", alpha=0.2, lw=0,
                        label="Glorot baseline (b = 0), median CI")
    ax.axhline(budget, color="grey", lw=0.6, ls=":")
    log_axis(ax, sigma)
    ax.set_ylabel("median steps to converge")
    ax.set_title(title(ds, panel["mode"]))


def fig_time_to_converge(panels, datasets, fits):
    """Median steps to converge vs sigma_b (KM 95% CIs; unreached medians drawn at the budget
    as open markers), the Glorot baseline as a band, and the fitted log-law."""
    fig, axes = _grid(len(panels), 2.7)
    for ax, panel in zip(axes.flat, panels):
        _converge_panel(ax, panel, fits)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    finish(fig, axes, "Steps to converge: Kaplan-Meier median with 95% CI (open circle on the "
           "dotted budget line: median not reached); shaded: Glorot baseline (b = 0) median CI; "
           f"dashed: fitted a + b log10(1/sigma_b); {seeds_label(datasets)} seeds per grid "
           "point")
    return fig


def fig_survival(ds, curves, activation="tanh", mode="constant"):
    """Kaplan-Meier curves P(not yet converged at step t) for a few sigma_b, with 95% bands."""
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    for i, (s, km) in enumerate(curves):
        t = np.concatenate([[0], km.time])
        ax.step(t, np.concatenate([[1], km.survival]), where="post", color=PALETTE[i],
                label=f"sigma_b = {s:g}")
        ax.fill_between(t, np.concatenate([[1], km.low]), np.concatenate([[1], km.high]),
                        step="post", color=PALETTE[i], alpha=0.15, lw=0)
    ax.set_xlabel("training step")
    ax.set_ylabel("P(not yet converged)")
    ax.set_xlim(0, ds.attrs["steps"])
    ax.set_title("\n".join(textwrap.wrap(
        f"{title(ds, mode)}, {activation}: Kaplan-Meier survival of the time to converge, "
        f"{ds.sizes['seed']} seeds, 95% bands", 70)))
    ax.legend(loc="lower left")
    fig.tight_layout()
    return fig


def _theory(theory) -> list[str]:
    """The theory's P(layer 1 broken by the budget) and mechanism next to the measured P, per
    constant-W activation and sigma_b > 0 (``theory``: :func:`jaxsym.analysis.bias_only.
    theory_rows`, or why there is none)."""
    if isinstance(theory, str):
        return ["**The theory next to the measurement**: not made for this experiment "
                f"({theory}).", ""]
    rows = [r for r in theory if r["sigma_b"] > 0]
    sigmas = sorted({r["sigma_b"] for r in rows})
    activations = list(dict.fromkeys(r["cell"].get("activation", "") for r in rows))
    draws = sorted({r["draw"] for r in rows})
    agree, trivial = sum(r["agree"] for r in rows), sum(r["baseline_agree"] for r in rows)
    lines = [
        "**The theory next to the measurement** (`jaxsym.theory.classify` run on this "
        "config's constant-W cells before looking at the runs: one symmetric trajectory and "
        "its linearised escape per activation" + (f" and data draw ({len(draws)})"
                                                  if len(draws) > 1 else "")
        + "; each entry predicted / measured P(hidden layer 1 broken by the budget), **x** "
        "where they disagree, judged as in the classification section: both >= 0.9, both "
        f"<= 0.1, or the prediction inside the measured 95% Wilson interval): **{agree} of "
        f"{len(rows)}** entries agree; the rule 'smooth activations break, relu-type ones do "
        f"not' scores {trivial} of {len(rows)}.", "",
        "| activation | mechanism (theory) | " + " | ".join(f"sigma_b = {s:.0e}" for s in sigmas)
        + " |", "|---|---|" + "---|" * len(sigmas)]
    for act in activations:
        mine = [r for r in rows if r["cell"].get("activation", "") == act]
        mechs = sorted({r["prediction"].mechanism for r in mine},
                       key=[r["prediction"].mechanism for r in mine].index)
        cells = []
        for sigma in sigmas:
            cells.append(" ".join(
                f"{r['prediction'].p_broken:.2f}/{r['p_measured']:.2f}"
                + ("" if r["agree"] else " **x**")
                for r in mine if r["sigma_b"] == sigma))
        lines.append(f"| {act} | {', '.join(mechs)} | " + " | ".join(cells) + " |")
    return lines + [""]


def _experiment(ds, rows, survival, figures_dir, theory=None) -> list[str]:
    stem = f"survival_{ds.attrs['name']}"
    save(fig_survival(ds, survival, activation=survival_activation(ds)), figures_dir, stem)
    return [f"## {ds.attrs['name']}", "", description(ds), "", "### Setup", "", setup_table(ds),
            "", "### Results", "", _table(rows), "",
            "P(broken) (the rows of W stop being parallel: s2/s1 of W above the threshold "
            "at some step) and P(fn broken) (the units compute different functions at the "
            "end: s2/s1 of the centred hidden activations over the training inputs above the "
            "threshold) with 95% Wilson intervals; sigma_90: where a logistic fit of "
            "P(broken) in log10(sigma_b) (sigma_b > 0, on its rising branch) reaches 0.9, with a "
            "stratified bootstrap 95% CI ('<= x': at or below the smallest sigma_b; 'P < 0.9 "
            "again at x': non-monotone); the Wilson rule asks the interval's lower end to "
            "reach 0.9, which needs >= 35 networks per point even when all break; medians are Kaplan-Meier medians of the first "
            "step with training loss below the threshold, with 95% CIs, right-censored at the "
            "budget ('> budget': not reached, never the mean of the runs that finished); slopes "
            "are least-squares fits of the per-sigma medians over sigma_b in "
            f"[{FIT_SIGMA_RANGE[0]:g}, {FIT_SIGMA_RANGE[1]:g}] (from the rounding limit up) "
            "where >= 90% converged, with stratified bootstrap 95% CIs: window fits, which are "
            "not the log-law's slope where the curve bends (section 'The log-law slope from "
            f"the Hessian' states its asymptote); '{ROUNDING_MARK}': a threshold below "
            "the rounding limit of the run's dtype (100 unit roundoffs), not a conclusion. "
            "What the networks learned, next to whether their symmetry broke: P(converged) "
            "of the identical units (sigma_b = 0: the collapsed network) and the test score "
            + ("(mean final test accuracy" if rows and rows[0].get("classification") else
               "(geometric-mean final test loss") + " with its Student-t 95% CI) at "
            "sigma_b = 0, at the largest sigma_b and of the Glorot baseline.", "",
            *(_theory(theory) if theory is not None else []),
            f"![survival]({stem}.png)", ""]


def render(numbers, figures_dir) -> list[str]:
    """The section's markdown lines (and its figures in ``figures_dir``)."""
    datasets, fits = numbers["datasets"], numbers["fits"]
    save(fig_p_broken(numbers["panels"], datasets), figures_dir, "p_broken")
    save(fig_time_to_converge(numbers["panels"], datasets, fits), figures_dir,
         "time_to_converge")
    save(fig_p_converged(numbers["panels"], datasets), figures_dir, "p_converged")
    lines = ["## Answer", "", MECHANISM, "", "Measured (quick or full preset, see the setup "
             "tables):", "", _answer(numbers["rows"]), "", "## P(symmetry broken) vs sigma_b",
             "", "![P(broken)](p_broken.png)", "", "## Time to converge vs sigma_b", "",
             "![time to converge](time_to_converge.png)", "",
             "Its companion, the probability of converging within the budget (a median above "
             "the budget says only that fewer than half converged):", "",
             "![P(converged)](p_converged.png)", ""]
    for ds in datasets:
        name = ds.attrs["name"]
        lines += _experiment(ds, numbers["rows"][name], numbers["survival"][name], figures_dir,
                             numbers.get("theory", {}).get(name))
    return lines
