"""``jaxsym report`` / :func:`jaxsym.report`: figures and ``REPORT.md`` from finished runs.

Contract: :func:`summarize` turns one bias-only result dataset into table rows (pure, no I/O);
:func:`write_report` loads run directories, draws the figures (:mod:`jaxsym.reporting.plots`) and writes
``REPORT.md``. Every number in the report is computed here from the datasets; the setup tables
are generated from the configs stored in the datasets.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from jaxsym.reporting import plots
from jaxsym.analysis import stats
from jaxsym.engine import store

__all__ = ["summarize", "fit_slopes", "write_report", "description", "write_text_if_changed", "study_of", "saddle_fits", "phase_table", "P_TARGET", "FIT_SIGMA_RANGE"]

P_TARGET = 0.9

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
#: the small-sigma regime where the log-law is fitted
FIT_SIGMA_RANGE = (1e-8, 1e-2)


def _loss(ds) -> str:
    return json.loads(ds.attrs["study"])["sections"]["train"]["loss"]


def fit_slopes(ds) -> dict:
    """Log-law fits ``T = a + b log10(1/sigma_b)`` per (weight mode, activation), over the
    sigma_b values of :data:`FIT_SIGMA_RANGE` where at least 90% of the networks converged
    (censored runs would bias the medians); missing when fewer than 3 such values exist."""
    from jaxsym import analysis

    fits = {}
    for mode in plots._modes(ds):
        sub = plots._select(ds, mode)
        for act in sub.activation.values:
            fit = analysis.fit_curve(sub.sel(activation=act), sigma_range=FIT_SIGMA_RANGE,
                                     min_finished=0.9, n_boot=1000)
            if fit is not None:
                fits[(ds.attrs["name"], mode, str(act))] = fit
    return fits


def summarize(ds, fits=None) -> list[dict]:
    """One row per (weight mode, activation) of a bias-only dataset.

    Columns: P(broken) at sigma_b = 0 and at the largest sigma_b (with Wilson CIs), the smallest
    sigma_b > 0 with P(broken) >= 0.9, the median steps to converge at the largest sigma_b and at
    the Glorot baseline (sigma_b = 0), and the fitted log-law slope with its bootstrap CI.
    """
    fits = fit_slopes(ds) if fits is None else fits
    budget = ds.attrs["steps"]
    rows = []
    base_ds = ds.sel(weight_mode="glorot") if "glorot" in ds.weight_mode.values else None
    for mode in plots._modes(ds):
        sub = plots._select(ds, mode)
        sigma = sub.sigma_b.values
        for act in sub.activation.values:
            a = sub.sel(activation=act)
            n = a.sizes["seed"]
            k = a.broken.sum("seed").values
            low, high = stats.wilson_interval(k, np.full_like(k, n))
            p = k / n
            ok = [s for s, q in zip(sigma, p) if s > 0 and q >= P_TARGET]
            top = a.sel(sigma_b=sigma.max())
            med = stats.median_time(top.time_to_converge.values, top.converged.values)
            row = {"experiment": ds.attrs["name"], "loss": _loss(ds), "weight_mode": mode,
                   "activation": str(act), "seeds": n, "budget": budget,
                   "p_broken_zero": (p[0], low[0], high[0]) if sigma[0] == 0 else None,
                   "p_broken_top": (p[-1], low[-1], high[-1]), "sigma_top": float(sigma.max()),
                   "sigma_p90": min(ok) if ok else None,
                   "p_converged_top": float(top.converged.mean()),
                   "median_top": med, "fit": fits.get((ds.attrs["name"], mode, str(act)))}
            if base_ds is not None:
                b = base_ds.sel(activation=act, sigma_b=0.0)
                row["median_glorot"] = stats.median_time(b.time_to_converge.values,
                                                          b.converged.values)
            rows.append(row)
    return rows


def _steps(x: float) -> str:
    """Whole steps, without a '-0'."""
    return f"{round(x) + 0:d}"


def _p(cell) -> str:
    return "n/a" if cell is None else f"{cell[0]:.2f} [{cell[1]:.2f}, {cell[2]:.2f}]"


def _table(rows) -> str:
    head = ("| weight init | activation | P(broken), sigma_b = 0 | P(broken), largest sigma_b | "
            "smallest sigma_b with P >= 0.9 | median steps to converge, largest sigma_b | "
            "Glorot baseline (b = 0) | slope b (steps/decade) |")
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        fit = r["fit"]
        slope = (f"{fit.b + 0:.1f} [{fit.b_low + 0:.1f}, {fit.b_high + 0:.1f}]" if fit else "n/a")
        glorot = stats.format_median(r["median_glorot"], r["budget"]) if "median_glorot" in r \
            else "n/a"
        sigma_p90 = "none" if r["sigma_p90"] is None else f"{r['sigma_p90']:g}"
        lines.append(
            f"| {plots.MODE_LABELS.get(r['weight_mode'], r['weight_mode'])} | {r['activation']} | "
            f"{_p(r['p_broken_zero'])} | {_p(r['p_broken_top'])} | {sigma_p90} | "
            f"{stats.format_median(r['median_top'], r['budget'])} | {glorot} | {slope} |")
    return "\n".join(lines)


def _weight_modes(study: dict) -> str:
    """The weight init schemes a study uses, in words (``study``: its stored identity)."""
    init = study["sections"]["init"]
    modes = dict(study["grid"]).get("weight_mode", [init["weight_mode"]])
    scaled = "/sqrt(fan_in)" if init["fan_in_scaled"] else ""
    words = {"constant": f"constant {init['weight_value']:g}{scaled}", "zero": "zero",
             "glorot": "Glorot normal", "normal": "N(0, W_std^2 / fan_in)",
             "tied": "one N(0, W_std^2 / fan_in) row for every unit + eps N(0, 1)"}
    return ", ".join(words[m] for m in modes)


def _setup(ds) -> str:
    study = json.loads(ds.attrs["study"])
    s = study["sections"]
    grid = "; ".join(f"{axis} = {', '.join(f'{v:g}' if isinstance(v, float) else str(v) for v in values)}"
                     for axis, values in study["grid"])
    task_opts = ", ".join(f"{k} = {v}" for k, v in s["task"].items() if k != "name")
    return "\n".join([
        "| setting | value |", "|---|---|",
        f"| task | {s['task']['name']} ({task_opts}) |",
        f"| network | depth {s['model']['depth']} (hidden layers: {s['model']['depth'] - 1}), "
        f"width {s['model']['width']}, layer sizes {ds.attrs['layer_sizes']} |",
        f"| training | {s['train']['optimizer']}, lr {s['train']['learning_rate']:g}, "
        f"{s['train']['steps']} steps, "
        f"{'full batch' if s['train']['batch_size'] == 0 else 'batch ' + str(s['train']['batch_size'])}, "
        f"{s['train']['dtype']}, loss {s['train']['loss']} |",
        f"| init | weights: {_weight_modes(study)}; biases N(0, sigma_b^2) |",
        f"| grid | {grid} |",
        f"| seeds | {s['seeds']['count']} per grid point (preset: {ds.attrs.get('preset') or 'none'}) |",
        f"| broken | every hidden layer's s2/s1 > {s['thresholds']['diversity']:g} (first step) |",
        f"| converged | training loss <= {s['thresholds']['loss']:g} (first step) |",
        f"| run | {ds.attrs['n_devices']} {ds.attrs['backend']} device(s), strategy "
        f"{ds.attrs['strategy']} (networks per map step: "
        f"{ds.attrs.get('nets_per_map_step', 'n/a')}), jaxsym {ds.attrs['jaxsym_version']}, "
        f"git {ds.attrs['git_sha'][:10]}"
        f"{' (uncommitted changes)' if ds.attrs.get('git_dirty') == 'yes' else ''} |",
        f"| machine | {ds.attrs.get('cpu_model', 'unknown')} ({ds.attrs.get('cpu_isa', '?')}), "
        f"device kind {ds.attrs.get('device_kind', '?')}, XLA_FLAGS "
        f"'{ds.attrs.get('xla_flags', '')}'; jax {ds.attrs['jax_version']}, jaxlib "
        f"{ds.attrs.get('jaxlib_version', '?')}, optax {ds.attrs.get('optax_version', '?')}, "
        f"numpy {ds.attrs.get('numpy_version', '?')}"
        + (f", scipy {ds.attrs['scipy_version']}, xarray {ds.attrs['xarray_version']}"
           if "scipy_version" in ds.attrs else "") + " |",
    ])


def _answer(rows_by_experiment) -> str:
    """Plain-language findings, each sentence built from the measured numbers."""
    out = []
    for name, rows in rows_by_experiment.items():
        loss = rows[0]["loss"]
        for mode in ("constant", "zero"):
            mode_rows = [r for r in rows if r["weight_mode"] == mode]
            if not mode_rows:
                continue
            breaks = [r["activation"] for r in mode_rows if r["sigma_p90"] is not None]
            never = [r["activation"] for r in mode_rows if r["p_broken_top"][0] < 0.1]
            zero_ok = all(r["p_broken_zero"] is None or r["p_broken_zero"][0] == 0
                          for r in mode_rows)
            text = (f"- **{name}** ({plots.LOSS_LABELS.get(loss, loss)}), "
                    f"{plots.MODE_LABELS[mode]}: ")
            rounding = [r["activation"] for r in mode_rows
                        if r["p_broken_zero"] is not None and r["p_broken_zero"][0] > 0]
            text += ("with sigma_b = 0 no network broke symmetry; " if zero_ok else
                     "at sigma_b = 0 (identical units) " + ", ".join(rounding) + " still broke "
                     "symmetry: float rounding noise, amplified at the unstable symmetric "
                     "saddle; ")
            if breaks:
                text += ("random biases alone broke symmetry (P >= 0.9) for "
                         + ", ".join(f"{r['activation']} (from sigma_b = {r['sigma_p90']:g})"
                                     for r in mode_rows if r["sigma_p90"] is not None) + "; ")
            if never:
                text += "they did not for " + ", ".join(never) + "; "
            conv = [r for r in mode_rows if r["median_top"].reached and "median_glorot" in r]
            if conv:
                text += ("median steps to converge at the largest sigma_b vs the Glorot "
                         "baseline: " + ", ".join(
                             f"{r['activation']} {r['median_top'].median:.0f} vs "
                             f"{stats.format_median(r['median_glorot'], r['budget'])}"
                             for r in conv) + "; ")
            fitted = [r for r in mode_rows if r["fit"] is not None]
            if fitted:
                text += ("each decade less sigma_b costs " + ", ".join(
                    f"{_steps(r['fit'].b)} [{_steps(r['fit'].b_low)}, {_steps(r['fit'].b_high)}]"
                    f" steps ({r['activation']})" for r in fitted) + ".")
            out.append(text.rstrip("; ") + ("" if text.endswith(".") else "."))
    return "\n".join(out)


def unlock_steps(ds) -> dict:
    """First step at which each weight layer's gradient is nonzero in at least half of the seeds
    (median > 0), per (activation, sigma_b): ``{(activation, sigma_b): [step or None]}``."""
    out = {}
    for act in ds.activation.values:
        for s in ds.sigma_b.values:
            nonzero = (ds.grad_norm.sel(activation=act, sigma_b=s) > 0).mean("seed").values >= 0.5
            out[(str(act), float(s))] = [int(np.argmax(col)) if col.any() else None
                                         for col in nonzero.T]
    return out


def _staircase_text(ds) -> str:
    depth = ds.sizes["weight_layer"]
    medians = ds.grad_norm.median("seed").values
    positive = medians[medians > 0]
    span = np.log10(positive.max() / positive.min()) if positive.size else 0.0
    lines = []
    for (act, s), steps in unlock_steps(ds).items():
        shown = ", ".join("-" if t is None else str(t) for t in steps)
        staircase = all(t == depth - 1 - i for i, t in enumerate(steps) if t is not None)
        lines.append(f"| {act} | {s:g} | {shown} | {'yes' if staircase else 'no'} |")
    return "\n".join([
        "First step at which layer l's weight gradient is nonzero in at least half of the seeds "
        "(layers 1 = "
        f"input .. {depth} = output; '-': never within {ds.sizes['grad_step']} steps). The "
        "backprop rule dz_i = W_{i+1}^T dz_{i+1} * g'(z_i) predicts step depth - l: one layer "
        "unlocks per step from the output down. With sigma_b = 0 and g(0) = 0 (tanh, gelu, "
        "relu) every hidden activation is 0 and nothing moves at all (total stall); sigmoid and "
        "softplus (g(0) != 0) still unlock. Each unlock multiplies the gradient by a freshly "
        f"moved, tiny weight: the median gradient norms in the heatmap span {span:.0f} "
        "decades.", "",
        "| activation | sigma_b | unlock step of layers 1..L | staircase (step = L - l)? |",
        "|---|---|---|---|", *lines])


def unit_roundoff(dtype: str) -> float:
    """u = eps / 2 of a float dtype (bfloat16 through ml_dtypes, which jax ships)."""
    import ml_dtypes

    return float(ml_dtypes.finfo(dtype).eps) / 2.0


def dtype_floor(ds) -> float:
    """sigma_b*: the largest positive sigma_b such that every sigma_b <= it (and 0) has
    P(broken) = 0 within the budget, i.e. behaves exactly like identical units; 0 if even the
    smallest positive sigma_b breaks, nan if sigma_b = 0 itself breaks."""
    p = ds.broken.mean("seed")
    sigmas = np.sort(ds.sigma_b.values)
    if 0.0 in sigmas and float(p.sel(sigma_b=0.0)) > 0:
        return float("nan")
    floor = 0.0
    for s in sigmas[sigmas > 0]:
        if float(p.sel(sigma_b=s)) > 0:
            break
        floor = float(s)
    return floor


#: the escape log-law is fitted from this many unit roundoffs up (see _escape_text)
ESCAPE_FIT_ABOVE_U = 100.0


def escape_fit(ds):
    """``(fit, sigmas)``: the log-law of the time to break over the escape cells with
    ``100 u <= sigma_b <= 1e-2`` and P(broken) >= 0.9 (``(None, sigmas)`` if < 3 cells)."""
    ds = plots.squeeze_grid(ds)
    low = ESCAPE_FIT_ABOVE_U * unit_roundoff(ds.attrs["dtype"])
    sigmas = sorted(float(s) for s in ds.sigma_b.values if low <= s <= 1e-2
                    and float(ds.broken.sel(sigma_b=s).mean()) >= 0.9)
    if len(sigmas) < 3:
        return None, sigmas
    a = ds.sel(sigma_b=sigmas)
    sig = np.broadcast_to(a.sigma_b.values[:, None], a.broken.shape)
    return stats.fit_log_law(sig.ravel(), a.time_to_break.values.ravel(),
                             a.broken.values.ravel(), n_boot=1000), sigmas


def _escape_text(datasets) -> str:
    lines = ["| dtype | sigma_b | P(broken) [95% CI] | median step to break | median step to "
             "converge |", "|---|---|---|---|---|"]
    floors = ["| dtype | unit roundoff u | floor sigma_b* | sigma_b* / u | first sigma_b that "
              "breaks | log-law above the floor (steps/decade) |", "|---|---|---|---|---|---|"]
    findings = []
    for ds in sorted(map(plots.squeeze_grid, datasets), key=lambda d: d.attrs["dtype"]):
        budget, dtype = ds.attrs["steps"], ds.attrs["dtype"]
        breaks = {}
        for s in ds.sigma_b.values:
            a = ds.sel(sigma_b=s)
            n, k = a.sizes["seed"], int(a.broken.sum())
            low, high = stats.wilson_interval(k, n)
            brk = stats.median_time(a.time_to_break.values, a.broken.values)
            conv = stats.median_time(a.time_to_converge.values, a.converged.values)
            breaks[float(s)] = brk.median
            lines.append(f"| {dtype} | {s:.0e} | {k / n:.2f} [{low:.2f}, {high:.2f}] "
                         f"| {stats.format_median(brk, budget)} | "
                         f"{stats.format_median(conv, budget)} |")
        floor, u = dtype_floor(ds), unit_roundoff(dtype)
        fit, above = escape_fit(ds)
        slope = "n/a (fewer than 3 cells)"
        if fit is not None:
            slope = (f"{fit.b:.0f} [{fit.b_low:.0f}, {fit.b_high:.0f}] over "
                     f"[{above[0]:.0e}, {above[-1]:.0e}]")
        first = min((s for s in breaks if s > floor), default=float("nan"))
        floors.append(f"| {dtype} | {u:.1e} | {floor:.0e} | {floor / u:.2g} | {first:.0e} | "
                      f"{slope} |")
    findings.append(
        "With exact symmetric arithmetic (jaxsym.core.dense), identical units (sigma_b = 0) never "
        "break, in any dtype: P(broken) = 0. A positive sigma_b far below the resolution of the "
        "pre-activations is absorbed: every unit computes the same z, the bias differences never "
        "reach the loss, and the network behaves exactly like sigma_b = 0. The floor sigma_b* "
        "(largest sigma_b that behaves like 0, every smaller one too) is set by the dtype's unit "
        "roundoff u; above it the time to break follows the log-law, fitted over the cells from "
        f"{ESCAPE_FIT_ABOVE_U:g} u to 1e-2 with P(broken) >= 0.9. Cells between the floor and "
        "about 100 u are not conclusions: there the initial asymmetry is partly a rounding "
        "residue of the non-symmetric arithmetic, which differs between CPUs (in float32 the "
        "1e-9 and 1e-7 cells move with the kernels; benchmarks/cross_machine.py).")
    return "\n\n".join(findings + ["\n".join(floors), "\n".join(lines)])


def _noise_text(ds) -> str:
    """Noise dose: P(broken) and times vs the per-step relative parameter noise, sigma_b = 0."""
    budget = ds.attrs["steps"]
    acts = [str(a) for a in ds.activation.values] if "activation" in ds.dims else [None]
    lines = ["| activation | noise | P(broken) [95% CI] | median step to break | median step to "
             "converge |", "|---|---|---|---|---|"]
    findings = []
    for act in acts:
        d = ds.sel(activation=act) if act is not None else ds
        dose = None
        for v in d.noise.values:
            a = d.sel(noise=v)
            n, k = a.sizes["seed"], int(a.broken.sum())
            low, high = stats.wilson_interval(k, n)
            if dose is None and k / n >= 0.9:
                dose = float(v)
            brk = stats.median_time(a.time_to_break.values, a.broken.values)
            conv = stats.median_time(a.time_to_converge.values, a.converged.values)
            lines.append(f"| {act} | {v:.0e} | {k / n:.2f} [{low:.2f}, {high:.2f}] | "
                         f"{stats.format_median(brk, budget)} | "
                         f"{stats.format_median(conv, budget)} |")
        p_zero = float(d.sel(noise=0.0).broken.mean()) if 0.0 in d.noise.values else float("nan")
        text = f"**{act}**: P(broken) = {p_zero:.2f} without noise; "
        text += (f"the smallest dose with P(broken) >= 0.9 is noise = {dose:.0e}. "
                 if dose is not None else "no dose reached P(broken) >= 0.9. ")
        ok = [float(v) for v in d.noise.values
              if v > 0 and float(d.sel(noise=v).broken.mean()) >= 0.9 and v <= 1e-4]
        if len(ok) >= 3:
            a = d.sel(noise=ok)
            sig = np.broadcast_to(a.noise.values[:, None], a.broken.shape)
            fit = stats.fit_log_law(sig.ravel(), a.time_to_break.values.ravel(),
                                    a.broken.values.ravel(), n_boot=1000)
            text += (f"Over noise in [{ok[0]:.0e}, {ok[-1]:.0e}] the time to break grows by "
                     f"{fit.b:.0f} [{fit.b_low:.0f}, {fit.b_high:.0f}] steps per decade of "
                     "smaller noise: a per-step kick of relative size noise plays the role "
                     "of the initial bias spread (compare the escape experiment's float64 "
                     "log-law, same network).")
        findings.append(text)
    return "\n\n".join(findings + ["\n".join(lines)])


def study_of(ds):
    """The :class:`jaxsym.study.config.Study` a result dataset was run from (config, preset and
    overrides are stored in its attributes)."""
    from jaxsym.study import config

    study = config.parse_study(ds.attrs["config"], name=ds.attrs["name"],
                               preset=ds.attrs.get("preset") or None)
    return config.apply_overrides(study, json.loads(ds.attrs.get("overrides", "{}")))


def saddle_fits(ds) -> dict:
    """Log-law fits of the steps to break and to converge over every sigma_b of ``ds``."""
    ds = plots.squeeze_grid(ds)
    sigma = np.broadcast_to(ds.sigma_b.values[:, None], ds.time_to_break.shape).ravel()
    return {name: stats.fit_log_law(sigma, ds[name].values.ravel(), ds[flag].values.ravel(),
                                    n_boot=1000)
            for name, flag in (("time_to_break", "broken"), ("time_to_converge", "converged"))}


def _saddle_text(ds, analysis, fits) -> str:
    spec = analysis.spectrum
    ds = plots.squeeze_grid(ds)
    finished = float((ds.broken & ds.converged).mean())
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


def zero_init_table(datasets) -> list[dict]:
    """The ``zero_init`` runs: one row per batch mode, optimizer, weight mode, sigma_b and
    learning rate: P(hidden layer broken) (Wilson 95%), the Kaplan-Meier median step to break,
    the final diversity s2/s1 (median over seeds) and the mean test accuracy (+- sd)."""
    rows = []
    for ds in datasets:
        batch = json.loads(ds.attrs["study"])["sections"]["train"]["batch_size"]
        for opt in ds.optimizer.values:
            for mode in ds.weight_mode.values:
                for sigma in ds.sigma_b.values:
                    for lr in ds.learning_rate.values:
                        one = ds.sel(optimizer=opt, weight_mode=mode, sigma_b=sigma,
                                     learning_rate=lr)
                        broken = one.broken.values
                        low, high = stats.wilson_interval(int(broken.sum()), broken.size)
                        rows.append({
                            "batch": "full" if batch == 0 else str(batch),
                            "optimizer": str(opt), "weight_mode": str(mode),
                            "sigma_b": float(sigma), "lr": float(lr),
                            "p_broken": float(broken.mean()), "p_low": float(low),
                            "p_high": float(high),
                            "median": stats.median_time(one.time_to_break.values, broken),
                            "diversity": float(one.diversity.isel(layer=0, step=-1)
                                               .median("seed")),
                            "accuracy": float(one.test_accuracy.mean()),
                            "accuracy_sd": float(one.test_accuracy.std()),
                            "steps": int(ds.attrs["steps"])})
    return rows


def _zero_init_text(rows) -> str:
    lines = ["| batch | optimizer | weights | sigma_b | lr | P(broken) [95% CI] | median step "
             "to break | final s2/s1 (median) | test accuracy (mean +- sd) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['batch']} | {r['optimizer']} | {r['weight_mode']} | "
                     f"{r['sigma_b']:g} | {r['lr']:g} | {r['p_broken']:.2f} "
                     f"[{r['p_low']:.2f}, {r['p_high']:.2f}] | "
                     f"{stats.format_median(r['median'], r['steps'])} | "
                     f"{r['diversity']:.1e} | {r['accuracy']:.3f} +- {r['accuracy_sd']:.3f} |")
    zero = [r for r in rows if r["weight_mode"] == "zero"]

    def listing(selected):
        return ", ".join(f"{r['optimizer']} lr {r['lr']:g} ({r['batch']} batch, sigma_b "
                         f"{r['sigma_b']:g}: step {r['median'].median:.0f})"
                         if r["median"].reached else
                         f"{r['optimizer']} lr {r['lr']:g} ({r['batch']} batch, sigma_b "
                         f"{r['sigma_b']:g})" for r in selected) or "none"
    return "\n".join([
        "The public report c-schicho/ZeroInitializationSymmetry trains a relu MLP with every "
        "weight 0 and biases N(0, 1) with Adam on minibatches (MNIST, one hidden layer of "
        "500) and finds accuracy close to a standard initialisation, while this study's "
        "staircase finds relu with W = 0 stuck under gradient descent. The theory "
        "(`jaxsym.theory.zero_init`, tested in `tests/test_zero_init.py`): relu is positively "
        "homogeneous, so after the first updates every live unit is a positive multiple of "
        "one unit, and every optimizer linear in the gradient (SGD, heavy-ball momentum, any "
        "minibatch) keeps it so in exact arithmetic: the layer is rank one. Adam divides each "
        "coordinate by its own running RMS, which removes the per-unit factor (its first step "
        "is -lr sign(g), the same size for every unit), so units with different biases get "
        "different kinks along the common direction and separate at once: the ingredient "
        "that breaks the symmetry by design is the optimizer, not the minibatch noise and "
        "not the bias scale. The set of multiples is invariant but not necessarily stable: "
        "the units differ, so their rounding differs, and where departures from the set grow "
        "(larger learning rates) a gradient method leaves it after a delay, seeded by "
        "rounding (float64 here), like the escape from the symmetric saddle. Measured on "
        "digits (one hidden layer of 64 relu units, float64, 1500 steps):", "",
        "- W = 0 broke (P >= 0.9) with: " + listing(
            [r for r in zero if r["p_broken"] >= 0.9]) + ";",
        "- W = 0 stayed rank one (P <= 0.1) with: " + listing(
            [r for r in zero if r["p_broken"] <= 0.1]) + ".", "", *lines])


CLASSIFY_EXPERIMENTS = ("classify",)


def _explain(row, rows) -> str:
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


def _classify_text(tables) -> str:
    from jaxsym.theory import classify

    lines, disagree, total, agree = [], [], 0, 0
    counts: dict = {}
    for ds, rows in tables:
        sigmas = sorted({r["sigma_b"] for r in rows})
        cells = list(dict.fromkeys(tuple(r["cell"].items()) for r in rows))
        for cell in cells:
            mine = [r for r in rows if tuple(r["cell"].items()) == cell]
            draws = sorted({r["draw"] for r in mine})
            mechs = [next(r for r in mine if r["draw"] == d and r["sigma_b"] == sigmas[0])[
                "prediction"].mechanism for d in draws]
            slopes = [r["prediction"].slope for r in mine if r["sigma_b"] == sigmas[0]
                      and r["prediction"].slope < classify.SLOW_SLOPE]
            parts = []
            for sigma in sigmas:
                entries = []
                for d in draws:
                    r = next(r for r in mine if r["draw"] == d and r["sigma_b"] == sigma)
                    total += 1
                    agree += r["agree"]
                    counts.setdefault(r["prediction"].mechanism, [0, 0])
                    counts[r["prediction"].mechanism][0] += r["agree"]
                    counts[r["prediction"].mechanism][1] += 1
                    if not r["agree"]:
                        disagree.append((ds.attrs["task"], r))
                    entries.append(f"{r['prediction'].p_broken:.2f}/{r['p_measured']:.2f}"
                                   + ("" if r["agree"] else "**x**"))
                parts.append(" ".join(entries))
            c = dict(cell)
            lines.append(f"| {ds.attrs['task']} | {c.get('loss', '')} | "
                         f"{c.get('activation', '')} | {' '.join(mechs)} | "
                         + (f"{np.median(slopes):.0f}" if slopes else "-") + " | "
                         + " | ".join(parts) + " |")
    header = ("| task | loss | activation | mechanism per draw (theory) | steps per decade "
              "(theory) | " + " | ".join(f"sigma_b = {s:.0e}: predicted/measured P, per draw"
                                         for s in sigmas) + " |")
    explained = [f"- {task}, {r['cell'].get('loss', '')}, {r['cell'].get('activation', '')}, "
                 f"draw {r['draw']}, sigma_b = {r['sigma_b']:.0e}: predicted "
                 f"{r['prediction'].p_broken:.2f}, measured {r['p_measured']:.2f} "
                 f"[{r['p_low']:.2f}, {r['p_high']:.2f}]: {_explain(r, None)}."
                 for task, r in disagree]
    by_mechanism = ", ".join(f"{m} {a} of {n}" for m, (a, n) in counts.items())
    kinked = [r for _, rows in tables for r in rows
              if r["prediction"].kink_trajectory is not None]
    no_cross = [r for r in kinked if r["prediction"].kink_trajectory < 0.5
                and r["prediction"].p_broken < 0.5]
    cross = [r for r in kinked if r["prediction"].kink_trajectory >= 0.5
             and r["prediction"].p_broken < 0.5]
    kink_text = (
        " **Kinks along the trajectory** (relu-type entries without a first-order break): "
        "where no unit is likely to cross a kink on a different side by the budget (P < 0.5, "
        f"`EscapePrediction.p_kink_by`), {sum(r['p_measured'] < 0.5 for r in no_cross)} of "
        f"{len(no_cross)} entries stayed unbroken: a crossing is necessary. Where one is "
        f"likely, {sum(r['p_measured'] >= 0.5 for r in cross)} of {len(cross)} broke: "
        "not sufficient (the kick of a crossing can stay below the threshold or heal), so the "
        "prediction for those entries stays the first-order one.") if kinked else ""
    return "\n".join([
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
        f"prediction lies inside the measured 95% Wilson interval: **{agree} of {total} "
        f"({100 * agree / max(total, 1):.0f}%)** (cell, draw, sigma_b) entries agree "
        f"(by predicted mechanism: {by_mechanism}). The draws of one cell often differ "
        "(xor is the extreme case): the prediction follows each draw." + kink_text, "",
        header,
        "|---|---|---|---|---|" + "---|" * len(sigmas), *lines, "",
        "Disagreeing entries, each with the reason the numbers give:" if explained else
        "No entry disagrees.", "", *explained])


PREDICT_EXPERIMENTS = ("predict", "predict_circles")
#: width-scaling target: predicted and measured slopes within this fraction
WIDTH_TOLERANCE = 0.02
#: the width-scaling slopes are fitted over sigma_b >= the decade of this many unit roundoffs
#: of the run's dtype (float64: 1e-12): below it the rounding of thousands of steps of
#: non-identical units is a deviation of the same order as the bias spread
ROUNDING_FLOOR_ROUNDOFFS = 1e4


def rounding_floor(dtype: str) -> float:
    """The smallest sigma_b the width-scaling fit uses: ``10**floor(log10(1e4 u))``, ``u`` the
    unit roundoff of ``dtype`` (float64: 1e-12, float32: 1e-4)."""
    u = float(np.finfo(np.dtype(dtype)).eps) / 2
    return float(10.0 ** np.floor(np.log10(ROUNDING_FLOOR_ROUNDOFFS * u)))


def width_scaling(saddle_runs) -> list[dict]:
    """One row per ``saddle_slope`` run (one per width m): the Hessian at the collapsed point
    (lambda_min, its multiplicity, m * lambda_min), the slope it predicts, the slope of the
    linearised escape's predicted medians over the run's sigma_b (least squares, as the
    measurement), and the measured slope of the steps to break with its bootstrap CI."""
    from jaxsym.theory import escape, saddle

    rows = []
    for ds in saddle_runs:
        study = study_of(ds)
        analysis = saddle.analyse_study(study, require_reached=False, trajectory_steps=1)
        (_, prediction), = escape.predict_study(study).items()
        flat = plots.squeeze_grid(ds)
        floor = rounding_floor(ds.attrs["dtype"])
        sigma = flat.sigma_b.values
        above = sigma >= floor * (1 - 1e-9)
        medians = np.array([prediction.median_time(float(s)) for s in sigma[above]])
        escape_slope = (float(np.polyfit(np.log10(1.0 / sigma[above]), medians, 1)[0])
                        if above.sum() >= 2 and np.all(np.isfinite(medians)) else None)
        times = flat.time_to_break.values
        fit = stats.fit_log_law(np.broadcast_to(sigma[:, None], times.shape).ravel(),
                                times.ravel(), flat.broken.values.ravel(),
                                sigma_range=(floor * (1 - 1e-9), float(sigma.max())),
                                n_boot=1000)
        # every network against its own prediction T(sigma_b ||d||)
        errors = np.abs(escape.network_errors(flat, study, prediction))
        measured = np.where(flat.broken.values, times, np.inf)
        ok = (errors <= np.maximum(2.0, 0.01 * measured)) | np.isnan(errors)
        rows.append({"width": int(ds.attrs["layer_sizes"][1]), "lr": analysis.learning_rate,
                     "lambda_min": analysis.spectrum.lambda_min,
                     "multiplicity": analysis.spectrum.multiplicity,
                     "reached": analysis.reached, "hessian_slope": analysis.slope,
                     "escape_slope": escape_slope, "fit": fit, "floor": floor,
                     "networks_ok": int(ok[above].sum()), "networks_above": int(ok[above].size),
                     "error_above": float(np.nanmax(errors[above])),
                     "error_below": (float(np.nanmax(errors[~above])) if (~above).any()
                                     else None),
                     "seeds": int(ds.sizes["seed"])})
    return sorted(rows, key=lambda r: r["width"])


def _width_text(rows) -> str:
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
        within += abs(d_esc) <= WIDTH_TOLERANCE
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
        f"{rows[0]['floor']:.0e} (the decade of {ROUNDING_FLOOR_ROUNDOFFS:.0e} unit roundoffs: "
        "below it the rounding of thousands of steps of non-identical units adds a deviation "
        "of the same order, and single networks break up to hundreds of steps away from their "
        "prediction, last column); each network is also checked against the prediction from "
        f"its OWN initial bias deviation, T(sigma_b ||d||). Measured within "
        f"{100 * WIDTH_TOLERANCE:g}% of the linearised-escape prediction at {within} of "
        f"{len(rows)} widths:", "", *lines])


def _cell_label(row) -> str:
    return ", ".join(str(v) for v in row["cell"].values())


def _predict_text(panels) -> str:
    """Predicted vs measured time to break, per task, activation, data draw and sigma_b."""
    from jaxsym.theory import escape

    summary, detail, misses = [], [], []
    for ds, rows, _ in panels:
        task = ds.attrs["task"] + (f" (depth {len(ds.attrs['layer_sizes']) - 1})"
                                   if len(ds.attrs["layer_sizes"]) > 3 else "")
        pooled = [r for r in rows if r["draw"] is None]
        per_draw = [r for r in rows if r["draw"] is not None] or pooled
        labels = list(dict.fromkeys(_cell_label(r) for r in pooled))
        for label in labels:
            mine = [r for r in per_draw if _cell_label(r) == label]
            pool = [r for r in pooled if _cell_label(r) == label]
            errors = [(abs(r["error"]), r["sigma_b"], r["draw"]) for r in mine
                      if r["error"] is not None]
            worst = max(errors, key=lambda e: e[0]) if errors else None
            p_ok = sum(r["p_low"] - 1e-12 <= r["p_predicted"] <= r["p_high"] + 1e-12
                       for r in mine)
            in_ci = sum(_inside_ci(r) for r in mine)
            summary.append(
                f"| {task} | {label} | {sum(r['agree'] for r in mine)} of {len(mine)} | "
                f"{in_ci} of {len(mine)} | "
                + (f"{100 * worst[0]:.1f}% (sigma_b = {worst[1]:.0e}"
                   + (f", draw {worst[2]}" if worst[2] is not None else "") + ")"
                   if worst else "n/a")
                + f" | {p_ok} of {len(mine)} | {_draw_spread(mine)} | "
                f"{sum(r['agree'] for r in pool)} of {len(pool)} | {mine[0]['n']} |")
        columns = [(label, d) for label in labels
                   for d in sorted({r["draw"] for r in per_draw if _cell_label(r) == label},
                                   key=str)]
        floor = ESCAPE_FIT_ABOVE_U * unit_roundoff(ds.attrs["dtype"])
        for r in per_draw:
            if not r["agree"]:
                where = (f"within {ESCAPE_FIT_ABOVE_U:g} unit roundoffs of {ds.attrs['dtype']}'s "
                         "floor: the rounding of the (non-identical) units adds to the bias "
                         "deviation and the measured escape comes earlier"
                         if r["sigma_b"] <= floor else "not explained by the first-order theory")
                misses.append(f"- {task}, {_cell_label(r)}, draw {r['draw']}, sigma_b = "
                              f"{r['sigma_b']:.0e}: predicted {r['predicted']:.0f}, measured "
                              f"{stats.format_median(r['measured'], ds.attrs['steps'])}: {where}.")
        detail += [f"**{task}** ({ds.attrs.get('draws', 1)} data draws; each entry: predicted "
                   "/ measured median step):", "",
                   "| sigma_b | " + " | ".join(
                       label + ("" if d is None else f", draw {d}") for label, d in columns)
                   + " |", "|---|" + "---|" * len(columns)]
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
            detail.append(f"| {sigma:.0e} | " + " | ".join(cells) + " |")
        detail.append("")
    return "\n".join([
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
        "second-order terms.", "",
        "**The training set matters.** Every cell is trained on several independent draws of "
        "its task (`task.draws`): the symmetric trajectory, and with it the time to break, "
        "depends on the draw, sometimes by a factor of several (column 'draws' below: the "
        "range of the draws' predicted medians at the smallest sigma_b). Pooled over draws the "
        "time to break is a mixture with several modes whose median can fall between them, so "
        "the prediction is made and checked PER DRAW (the pooled mixture is listed too).", "",
        f"Per draw: predicted median within {100 * escape.MEDIAN_TOLERANCE:g}% (or one step, "
        "the resolution of a time counted in steps) of the measured Kaplan-Meier median (or "
        "both beyond the budget), and predicted P(broken by the budget) inside the measured "
        "95% Wilson interval, over every (sigma_b, draw):", "",
        "| task | activation | medians within 5% | median inside its 95% CI | largest error | "
        "P(broken) inside CI | draws' predicted medians at the smallest sigma_b | pooled "
        "mixture within 5% | networks per draw |", "|---|---|---|---|---|---|---|---|---|",
        *summary, "", "Per-draw medians outside 5%:" if misses else "", *misses, "", *detail])


def _inside_ci(row) -> bool:
    """Predicted median inside the measured median's 95% CI (both beyond the budget counts)."""
    m = row["measured"]
    if not np.isfinite(row["predicted"]):
        return not m.reached or not np.isfinite(m.high)
    return bool(m.low <= row["predicted"] <= (m.high if np.isfinite(m.high) else np.inf))


def _draw_spread(rows) -> str:
    sigma = min(r["sigma_b"] for r in rows)
    values = sorted(r["predicted"] for r in rows if r["sigma_b"] == sigma)
    shown = [f"{v:.0f}" if np.isfinite(v) else "never" for v in values]
    return shown[0] if len(set(shown)) == 1 else f"{shown[0]} to {shown[-1]}"


def _layer_text(ds, predictions) -> str:
    """Per hidden layer of a deeper predict run: predicted and measured P(broken by the budget)
    and the measured median step, per sigma_b (pooled over cells and draws)."""
    depth = len(ds.attrs["layer_sizes"]) - 1
    hidden = depth - 1
    lines = ["| sigma_b | " + " | ".join(
        f"layer {l + 1}: P predicted / measured, median step" for l in range(hidden))
        + " | network (every layer) P |", "|---|" + "---|" * (hidden + 1)]
    for sigma in ds.sigma_b.values:
        one = ds.sel(sigma_b=sigma)
        cells = []
        for l in range(hidden):
            p_pred = float(np.mean([pred.p_broken_by(float(sigma), l)
                                    for pred in predictions.values()]))
            broken = one.broken_layer.isel(layer=l).values.ravel()
            times = one.time_to_break_layer.isel(layer=l).values.ravel()
            med = stats.median_time(times, broken)
            cells.append(f"{p_pred:.2f} / {broken.mean():.2f}, "
                         f"{stats.format_median(med, ds.attrs['steps'])}")
        lines.append(f"| {sigma:.0e} | " + " | ".join(cells)
                     + f" | {float(one.broken.mean()):.2f} |")
    return "\n".join([
        f"**Per hidden layer** ({ds.attrs['task']}, depth {depth}, every activation and draw "
        "pooled): the first hidden layer follows its first-order prediction; the upper ones "
        "have none (rank one to first order: their rows and their deviations are constant "
        "across their inputs, which are identical units of the layer below), so they can only "
        "diversify through second-order products of the two layers' deviations, late or never, "
        "and 'broken' in the network sense (every hidden layer) is rare even where the first "
        "layer broke.", "", *lines])


#: depth multiples of xi_c drawn on the phase diagram (Schoenholz et al. 2017 use 6 xi_c)
PHASE_XI_MULTIPLES = (3.0, 6.0)


def phase_table(datasets) -> dict:
    """The phase diagram from one ``phase_diagram`` dataset per depth.

    A network counts as trained when its final training accuracy is at least halfway between
    chance (the training set's majority-class rate) and 1. Returns ``{"sigma_w2": (n_s,),
    "depth": (n_d,), "trained": (n_d, n_s) counts, "seeds": (n_d,) seed counts, "threshold",
    "chance", "sigma_b2", "activation"}``, depths ascending.
    """

    datasets = sorted(datasets, key=lambda d: len(d.attrs["layer_sizes"]))
    study = study_of(datasets[0])
    task = study.make_task(0)
    chance = float(np.bincount(task.y_train).max() / task.y_train.size)
    threshold = 0.5 * (chance + 1.0)
    sigma_w = datasets[0].W_std.values
    trained, seeds = [], []
    for ds in datasets:
        if not np.array_equal(ds.W_std.values, sigma_w):
            raise ValueError("phase_diagram runs must share one W_std grid")
        acc = plots.squeeze_grid(ds).final_accuracy.values  # (W_std, seed)
        trained.append((acc >= threshold).sum(axis=-1))
        seeds.append(acc.shape[-1])
    return {"sigma_w2": sigma_w ** 2, "depth": np.array([len(d.attrs["layer_sizes"]) - 1
                                                         for d in datasets]),
            "trained": np.array(trained), "seeds": np.array(seeds), "threshold": threshold,
            "chance": chance, "sigma_b2": study.get("init.sigma_b") ** 2,
            "activation": study.get("model.activation")}


def _phase_text(table) -> str:
    from jaxsym.theory import meanfield

    act, sb2 = table["activation"], table["sigma_b2"]
    critical = float(meanfield.critical_sigma_w2(act, sb2))
    frac = table["trained"] / table["seeds"][:, None]
    positive = table["sigma_w2"] > 0
    xi = np.array([meanfield.depth_scales(act, s, sb2)[1] for s in table["sigma_w2"][positive]])
    agree = {k: float(np.mean((table["depth"][:, None] <= k * xi[None, :])
                              == (frac[:, positive] >= 0.5))) for k in PHASE_XI_MULTIPLES}
    bias_only = table["trained"][:, ~positive].sum(), (table["seeds"] * (~positive).sum()).sum()
    mf0 = meanfield.mean_field(act, 0.0, sb2)
    window = (frac[:, positive] >= 0.5).sum(axis=1)  # trainable sigma_w^2 values per depth
    narrowing = (f" The trainable window narrows from {window[0]} sigma_w^2 values at depth "
                 f"{table['depth'][0]} to {window[-1]} at depth {table['depth'][-1]}, around the "
                 "critical line." if window[-1] < window[0] else "")
    header = "| depth | " + " | ".join(f"{s:.3g}" for s in table["sigma_w2"]) + " |"
    rows = [header, "|---|" + "---|" * len(table["sigma_w2"])]
    for d, f in zip(table["depth"], frac):
        rows.append(f"| {d} | " + " | ".join(f"{v:.2f}" for v in f) + " |")
    return "\n".join([
        f"Mean-field theory (Gauss-Hermite, `jaxsym theory`) puts the edge of chaos of {act} at "
        f"sigma_w^2 = {critical:.3f} for sigma_b^2 = {sb2:g} (chi_1 = 1); there the correlation "
        "depth scale xi_c diverges, and signals (and gradients) survive through about 6 xi_c "
        f"layers (Schoenholz et al. 2017). Measured: the fraction of seeds whose final training "
        f"accuracy reaches {table['threshold']:.3f} (halfway between chance, "
        f"{table['chance']:.3f}, and 1). The trainable region (fraction >= 0.5) agrees with "
        + " and with ".join(f"depth <= {k:g} xi_c in {100 * a:.0f}%" for k, a in agree.items())
        + " of the (sigma_w^2 > 0, depth) cells." + narrowing, "",
        f"**The bias-only edge** (sigma_w = 0): the theory gives q* = sigma_b^2 = "
        f"{mf0.q_star:g}, c* = {mf0.c_star:g} and chi_1 = {mf0.chi_1:g}. Every input maps to "
        "the same hidden representation (only the biases are left), so the network cannot tell "
        "inputs apart, and every gradient below the top layer is multiplied by W = 0 (the "
        "unlock staircase). Measured: "
        f"{bias_only[0]} of {bias_only[1]} bias-only networks trained, at any depth.", "",
        "Fraction trained (rows: depth; columns: sigma_w^2):", "", *rows])


def description(ds) -> str:
    """The study's description as plain text (never a heading): its config's ``description``
    key, else the config's leading comment lines without their ``#``."""
    try:
        text = json.loads(ds.attrs["study"])["sections"].get("description")
    except (KeyError, ValueError):
        text = None
    if not text:
        comments = []
        for line in ds.attrs.get("config", "").splitlines():
            if not line.startswith("#"):
                break
            comments.append(line.lstrip("#").strip())
        text = " ".join(c for c in comments if c)
    text = " ".join(text.split())
    return "*Study:* " + text.lstrip("#").strip() if text else ""


def _label(source) -> str:
    return f"`{source}`" if isinstance(source, (str, Path)) else \
        f"the Dataset of study `{source.attrs.get('name', '?')}`"


def _generic_text(ds, summary, stem) -> str:
    """Setup, a table of every grid point and the overview figure of any study."""
    dims = list(summary.p_broken_p.dims)
    budget = summary.attrs["budget"]
    head = "| " + " | ".join(dims) + (" | " if dims else "") + (
        "networks | P(broken) [95% CI] | median steps to break | P(converged) [95% CI] | "
        "median steps to converge |")
    lines = [head, "|" + "---|" * (len(dims) + 5)]
    flat = summary.stack(point=dims) if dims else summary.expand_dims("point")
    for i in range(flat.sizes["point"]):
        row = flat.isel(point=i)

        def p(prefix):
            return (f"{float(row[prefix + '_p']):.2f} [{float(row[prefix + '_low']):.2f}, "
                    f"{float(row[prefix + '_high']):.2f}]")

        def median(prefix):
            m = stats.MedianTime(float(row[prefix + "_median"]), float(row[prefix + "_low"]),
                                 float(row[prefix + "_high"]),
                                 bool(np.isfinite(float(row[prefix + "_median"]))),
                                 int(summary.n), int(row[prefix + "_n_events"]))
            return stats.format_median(m, budget)

        cells = [f"{v:g}" if isinstance(v, float) else str(v)
                 for v in (row[d].values.item() for d in dims)]
        lines.append("| " + " | ".join(cells + [str(int(summary.n)), p("p_broken"),
                                                median("steps_to_break"), p("p_converged"),
                                                median("steps_to_converge")]) + " |")
    x_dim, _ = plots.overview_axes(summary)
    return "\n".join([
        description(ds), "", "### Setup", "", _setup(ds), "", "### Results", "",
        f"One row per grid point ({int(summary.n)} networks each; the seeds pool the data "
        "draws). P(broken): every hidden layer's direction diversity s2/s1 exceeded the "
        "threshold within the budget, with 95% Wilson intervals; medians are Kaplan-Meier "
        f"medians with 95% CIs, right-censored at the budget of {budget} steps ('> budget': "
        "not reached).", "", *lines, "",
        f"![overview]({stem}.png)" + (f" (x: {x_dim})" if x_dim else "")])


#: provenance rows of the setup tables: they may differ between two runs with equal numbers
_PROVENANCE_ROWS = ("| run |", "| machine |")


def _numbers_only(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith(_PROVENANCE_ROWS)]


def write_text_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless the file already holds the same report up to the
    provenance rows (git sha, machine): re-running the main job on a fresh clone leaves the
    committed report (and ``git status``) untouched when it reproduces the numbers. Returns
    True when written."""
    path = Path(path)
    try:
        if _numbers_only(path.read_text()) == _numbers_only(text):
            return False
    except (OSError, UnicodeDecodeError):
        pass
    store.write_atomic(path, lambda f: f.write(text.encode()))
    return True


def write_report(run_dirs, figures_dir="figures") -> Path:
    """Draw every figure and write ``figures_dir/REPORT.md`` from run directories (or
    ``xarray.Dataset`` objects of finished studies, e.g. from :func:`jaxsym.run`).

    Every study gets a section: the bundled experiments their dedicated ones, any other grid
    a generic one (P(broken) and the time to break and to converge at every grid point, with
    CIs, and an overview figure)."""
    figures_dir = Path(figures_dir)
    sources = list(run_dirs)
    datasets = [d if hasattr(d, "data_vars") else store.load(d) for d in sources]
    staircase = [ds for ds in datasets if ds.attrs["name"] == "staircase"]
    escape = [ds for ds in datasets if ds.attrs["name"] == "escape"]
    noise_runs = [ds for ds in datasets if ds.attrs["name"] == "noise_dose"]
    saddle_runs = [ds for ds in datasets if ds.attrs["name"] == "saddle_slope"]
    phase_runs = [ds for ds in datasets if ds.attrs["name"] == "phase_diagram"]
    predict_runs = [ds for ds in datasets if ds.attrs["name"] in PREDICT_EXPERIMENTS]
    classify_runs = [ds for ds in datasets if ds.attrs["name"] in CLASSIFY_EXPERIMENTS]
    zero_runs = [ds for ds in datasets if ds.attrs["name"] == "zero_init"]
    bias_only = [ds for ds in datasets if "weight_mode" in ds.dims and "sigma_b" in ds.dims
                 and "activation" in ds.dims]
    fits = {}
    for ds in bias_only:
        fits.update(fit_slopes(ds))
    sections = ["# jaxsym report", "",
                "Generated by `jaxsym report` from: " + ", ".join(_label(d) for d in sources)
                + ". Every number below is computed from those runs.", ""]
    if bias_only:
        plots.save(plots.fig_p_broken(bias_only), figures_dir, "p_broken")
        plots.save(plots.fig_time_to_converge(bias_only, fits), figures_dir, "time_to_converge")
        rows_by_experiment = {ds.attrs["name"]: summarize(ds, fits) for ds in bias_only}
        sections += ["## Answer", "", MECHANISM, "", "Measured (quick or full preset, see the "
                     "setup tables):", "", _answer(rows_by_experiment), "",
                     "## P(symmetry broken) vs sigma_b", "", "![P(broken)](p_broken.png)", "",
                     "## Time to converge vs sigma_b", "",
                     "![time to converge](time_to_converge.png)", ""]
        for ds in bias_only:
            stem = f"survival_{ds.attrs['name']}"
            plots.save(plots.fig_survival(ds), figures_dir, stem)
            sections += [f"## {ds.attrs['name']}", "", description(ds), "",
                         "### Setup", "", _setup(ds), "", "### Results", "",
                         _table(rows_by_experiment[ds.attrs["name"]]), "",
                         "P(broken) with 95% Wilson intervals; medians are Kaplan-Meier medians "
                         "of the first step with training loss below the threshold, with 95% "
                         "CIs, right-censored at the budget ('> budget': not reached, never the "
                         "mean of the runs that finished); slopes are least-squares fits of "
                         f"the per-sigma medians over sigma_b in [{FIT_SIGMA_RANGE[0]:g}, "
                         f"{FIT_SIGMA_RANGE[1]:g}] where >= 90% converged, with stratified "
                         "bootstrap 95% CIs.", "",
                         f"![survival]({stem}.png)", ""]
    if predict_runs:
        from jaxsym.theory import escape as escape_theory

        panels = []
        for ds in predict_runs:
            predictions = escape_theory.predict_pooled(study_of(ds))
            panels.append((ds, escape_theory.compare(ds, predictions), predictions))
        plots.save(plots.fig_predict(panels), figures_dir, "predict")
        deep = [_layer_text(ds, predictions) for ds, _, predictions in panels
                if len(ds.attrs["layer_sizes"]) > 3]
        sections += ["## The answer, predicted: the whole curve from one symmetric trajectory",
                     "", _predict_text(panels), "", *[t + "\n" for t in deep], "### Setup", "",
                     *[line for ds in predict_runs for line in (_setup(ds), "")],
                     "![predicted vs measured](predict.png)", ""]
    if classify_runs:
        from jaxsym.theory import classify

        tables = [(ds, classify.classification_rows(ds)) for ds in classify_runs]
        sections += ["## Which activation x loss x task breaks: predicted from theory alone", "",
                     _classify_text(tables), "", "### Setup", "",
                     *[line for ds in classify_runs for line in (_setup(ds), "")]]
    if zero_runs:
        sections += ["## W = 0: the rank-one trap, and the ingredient that leaves it", "",
                     _zero_init_text(zero_init_table(zero_runs)), "", "### Setup", "",
                     *[line for ds in zero_runs for line in (_setup(ds), "")]]
    for ds in staircase:
        plots.save(plots.fig_staircase(ds), figures_dir, "staircase")
        sections += ["## The unlock staircase (W = 0, random biases)", "",
                     _staircase_text(ds), "", "### Setup", "", _setup(ds), "",
                     "![staircase](staircase.png)", ""]
    if escape:
        plots.save(plots.fig_escape(escape), figures_dir, "escape")
        sections += ["## Escape from the symmetric saddle: dtype floors", "",
                     _escape_text(escape), "", "### Setup", "", _setup(escape[0]), "",
                     "![escape](escape.png)", ""]
    for ds in noise_runs:
        plots.save(plots.fig_noise_dose(ds), figures_dir, "noise_dose")
        sections += ["## Hardware-like noise as a dose (sigma_b = 0)", "", _noise_text(ds), "",
                     "### Setup", "", _setup(ds), "", "![noise dose](noise_dose.png)", ""]
    if len(saddle_runs) > 1:
        rows = width_scaling(saddle_runs)
        sections += ["## Width scaling of the saddle", "", _width_text(rows), ""]
    for ds in saddle_runs:
        from jaxsym.theory import saddle

        if "model.width" in json.loads(ds.attrs.get("overrides", "{}")):
            continue  # the width-scaling runs: in the table above

        analysis = saddle.analyse_study(study_of(ds), require_reached=False)
        fits = saddle_fits(ds)
        plots.save(plots.fig_saddle(ds, analysis, fits), figures_dir, "saddle_slope")
        warning = ([] if analysis.reached else [
            f"**WARNING: the prediction below is not valid.** Gradient descent from the symmetric "
            f"init did not reach the collapsed point (|grad| = {analysis.grad_norm:.1e} after "
            f"{analysis.steps_to_saddle} steps): the Hessian there does not describe the "
            "trajectory the sweep follows.", ""])
        sections += ["## The log-law slope from the Hessian at the symmetric saddle", "",
                     *warning, _saddle_text(ds, analysis, fits), "", "### Setup", "", _setup(ds), "",
                     "![saddle slope](saddle_slope.png)", ""]
    if phase_runs:
        table = phase_table(phase_runs)
        plots.save(plots.fig_phase_diagram(table, PHASE_XI_MULTIPLES), figures_dir,
                   "phase_diagram")
        sections += ["## Phase diagram: signal propagation and the bias-only edge", "",
                     _phase_text(table), "", "### Setup (one run per depth)", "",
                     _setup(phase_runs[0]), "", "![phase diagram](phase_diagram.png)", ""]
    used = {id(ds) for group in (staircase, escape, noise_runs, saddle_runs, phase_runs,
                                 predict_runs, classify_runs, zero_runs, bias_only)
            for ds in group}
    from jaxsym import analysis

    for ds in datasets:
        if id(ds) in used:
            continue
        summary = analysis.summary(ds)
        stem = f"overview_{ds.attrs['name']}"
        plots.save(plots.fig_overview(summary), figures_dir, stem)
        sections += [f"## {ds.attrs['name']}", "", _generic_text(ds, summary, stem), ""]
    figures_dir.mkdir(parents=True, exist_ok=True)
    path = figures_dir / "REPORT.md"
    write_text_if_changed(path, "\n".join(sections))
    return path
