"""Figures of a study, one function per figure kind (matplotlib, Agg, colour-blind-safe palette).

Contract: each ``fig_*`` function takes result datasets (``xarray.Dataset`` from
:func:`jaxsym.engine.store.load`) and returns a ``matplotlib.figure.Figure``; :func:`save` writes it as
PNG and PDF. Nothing here trains or computes statistics beyond calling :mod:`jaxsym.analysis.stats`.
sigma_b = 0 is drawn at the left edge of the log axis, on a tick labelled "0".
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxsym.analysis import stats  # noqa: E402

__all__ = ["PALETTE", "fig_p_broken", "fig_time_to_converge", "fig_survival", "fig_staircase",
           "fig_escape", "fig_predict", "fig_saddle", "fig_phase_diagram", "fig_overview",
           "save"]

#: numeric grid axes, in the order the overview figure prefers for its x axis
NUMERIC_X = ("sigma_b", "noise", "weight_value", "W_std", "learning_rate", "eps")
#: the overview figure draws at most this many curves per panel
OVERVIEW_CURVES = 12

#: Okabe-Ito colour-blind-safe palette
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
           "#000000"]
LOSS_LABELS = {"mse": "MSE", "bce": "binary CE", "softmax_ce": "softmax CE"}
MODE_LABELS = {"constant": "W constant (1/sqrt(fan_in))", "zero": "W = 0",
               "glorot": "Glorot W (baseline)", "normal": "W ~ N(0, W_std^2/fan_in)",
               "tied": "W tied + eps noise"}

plt.rcParams.update({"figure.dpi": 110, "font.size": 9, "axes.titlesize": 9,
                     "legend.fontsize": 7.5, "axes.grid": True, "grid.alpha": 0.3})


def _sigma_positions(sigma: np.ndarray) -> np.ndarray:
    """x positions: sigma_b itself, and a decade below the smallest positive value for 0."""
    positive = sigma[sigma > 0]
    zero_at = positive.min() / 10.0 if len(positive) else 1.0
    return np.where(sigma > 0, sigma, zero_at)


def _log_axis(ax, sigma: np.ndarray) -> None:
    ax.set_xscale("log")
    x = _sigma_positions(sigma)
    ticks = [t for t in x[sigma > 0] if np.isclose(np.log10(t) % 2, 0, atol=1e-9)]
    labels = [f"1e{int(round(np.log10(t)))}" for t in ticks]
    if (sigma == 0).any():
        ticks, labels = [x[sigma == 0][0]] + ticks, ["0"] + labels
    ax.set_xticks(ticks, labels)
    ax.minorticks_off()
    ax.set_xlabel("bias-init std sigma_b (dimensionless)")


def _title(ds, mode) -> str:
    return (f"{ds.attrs['task']} / {LOSS_LABELS.get(_loss(ds), _loss(ds))}: "
            f"{MODE_LABELS.get(mode, mode)}")


def _loss(ds) -> str:
    import json

    return json.loads(ds.attrs["study"])["sections"]["train"]["loss"]


def _modes(ds, include_baseline=False):
    modes = [str(m) for m in ds.weight_mode.values] if "weight_mode" in ds.dims else ["constant"]
    return [m for m in modes if include_baseline or m != "glorot"]


def _select(ds, mode):
    return ds.sel(weight_mode=mode) if "weight_mode" in ds.dims else ds


def fig_p_broken(datasets):
    """P(symmetry broken by the step budget) vs sigma_b, Wilson 95% bands; one line per
    activation, one panel per (experiment, weight mode)."""
    panels = [(ds, m) for ds in datasets for m in _modes(ds)]
    fig, axes = plt.subplots(len(panels) // 2 + len(panels) % 2, 2, squeeze=False,
                             figsize=(7.2, 2.6 * (len(panels) // 2 + len(panels) % 2)),
                             sharey=True)
    for ax, (ds, mode) in zip(axes.flat, panels):
        sub = _select(ds, mode)
        sigma = sub.sigma_b.values
        x = _sigma_positions(sigma)
        for i, act in enumerate(sub.activation.values):
            broken = sub.broken.sel(activation=act)
            k = broken.sum("seed").values
            n = broken.sizes["seed"]
            low, high = stats.wilson_interval(k, np.full_like(k, n))
            ax.plot(x, k / n, "o-", ms=3, color=PALETTE[i], label=str(act))
            ax.fill_between(x, low, high, color=PALETTE[i], alpha=0.18, lw=0)
        _log_axis(ax, sigma)
        ax.set_ylim(-0.03, 1.03)
        ax.set_ylabel("P(broken by step budget)")
        ax.set_title(_title(ds, mode))
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    _finish(fig, axes, f"Probability that random biases break symmetry (s2/s1 > "
            f"{datasets[0].attrs['diversity_threshold']:g} in every hidden layer) by the step "
            f"budget; {_seeds(datasets)} seeds per grid point; bands: 95% Wilson intervals")
    return fig


def _seeds(datasets) -> str:
    counts = sorted({int(ds.sizes["seed"]) for ds in datasets})
    return " / ".join(str(c) for c in counts)


def _finish(fig, axes, title: str) -> None:
    """Shared legend under the panels, wrapped title on top."""
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, title="activation", loc="lower center", ncol=len(labels),
               frameon=False)
    fig.suptitle("\n".join(textwrap.wrap(title, 110)), fontsize=8.5)
    fig.tight_layout(rect=(0, 0.07, 1, 1))


def _medians(times, events):
    """Per-sigma KM medians (rows of times/events over the seed axis)."""
    return [stats.median_time(t, e) for t, e in zip(times, events)]


def fig_time_to_converge(datasets, fits=None):
    """Median steps to converge vs sigma_b (KM 95% CIs; unreached medians drawn at the budget
    as open markers), the Glorot baseline as a band, and the fitted log-law when given.

    ``fits``: ``{(experiment name, mode, activation): stats.LogLawFit}``.
    """
    fits = fits or {}
    panels = [(ds, m) for ds in datasets for m in _modes(ds)]
    rows = len(panels) // 2 + len(panels) % 2
    fig, axes = plt.subplots(rows, 2, squeeze=False, figsize=(7.2, 2.7 * rows))
    for ax, (ds, mode) in zip(axes.flat, panels):
        sub = _select(ds, mode)
        sigma = sub.sigma_b.values
        x = _sigma_positions(sigma)
        budget = ds.attrs["steps"]
        for i, act in enumerate(sub.activation.values):
            a = sub.sel(activation=act)
            meds = _medians(a.time_to_converge.values, a.converged.values)
            med = np.array([m.median for m in meds])
            low = np.array([m.low for m in meds])
            high = np.array([min(m.high, budget) for m in meds])
            reached = np.isfinite(med)
            ax.errorbar(x[reached], med[reached], yerr=[med[reached] - low[reached],
                        high[reached] - med[reached]], fmt="o-", ms=3, lw=1, capsize=2,
                        color=PALETTE[i], label=str(act))
            ax.plot(x[~reached], np.full((~reached).sum(), budget), "o", ms=4, mfc="none",
                    color=PALETTE[i])
            fit = fits.get((ds.attrs["name"], mode, str(act)))
            if fit is not None:
                s = np.logspace(np.log10(fit.sigma_min), np.log10(fit.sigma_max), 20)
                ax.plot(s, fit.a + fit.b * np.log10(1 / s), "--", color=PALETTE[i], lw=0.8)
            if "weight_mode" in ds.dims and "glorot" in ds.weight_mode.values:
                base = ds.sel(weight_mode="glorot", activation=act, sigma_b=0.0)
                m = stats.median_time(base.time_to_converge.values, base.converged.values)
                if m.reached:
                    ax.axhspan(m.low, min(m.high, budget), color=PALETTE[i], alpha=0.08, lw=0)
        ax.axhline(budget, color="grey", lw=0.6, ls=":")
        _log_axis(ax, sigma)
        ax.set_ylabel("median steps to converge")
        ax.set_title(_title(ds, mode))
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    _finish(fig, axes, "Steps to converge: Kaplan-Meier median with 95% CI (open circle on the "
            "dotted budget line: median not reached); shaded: Glorot baseline (b = 0) median CI; "
            f"dashed: fitted a + b log10(1/sigma_b); {_seeds(datasets)} seeds per grid point")
    return fig


def fig_survival(ds, activation="tanh", mode="constant", sigmas=None):
    """Kaplan-Meier curves P(not yet converged at step t) for a few sigma_b, with 95% bands."""
    sub = _select(ds, mode).sel(activation=activation)
    sigma_all = sub.sigma_b.values
    sigmas = sigmas if sigmas is not None else sigma_all[::3]
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    for i, s in enumerate(sigmas):
        a = sub.sel(sigma_b=s)
        km = stats.kaplan_meier(a.time_to_converge.values, a.converged.values)
        t = np.concatenate([[0], km.time])
        ax.step(t, np.concatenate([[1], km.survival]), where="post", color=PALETTE[i],
                label=f"sigma_b = {s:g}")
        ax.fill_between(t, np.concatenate([[1], km.low]), np.concatenate([[1], km.high]),
                        step="post", color=PALETTE[i], alpha=0.15, lw=0)
    ax.set_xlabel("training step")
    ax.set_ylabel("P(not yet converged)")
    ax.set_xlim(0, ds.attrs["steps"])
    ax.set_title("\n".join(textwrap.wrap(
        f"{_title(ds, mode)}, {activation}: Kaplan-Meier survival of the time to converge, "
        f"{sub.sizes['seed']} seeds, 95% bands", 70)))
    ax.legend(loc="lower left")
    fig.tight_layout()
    return fig


def fig_staircase(ds):
    """Heatmaps (weight layer x step) of the median ||dLoss/dW_layer|| over seeds, log colour;
    exact zeros in grey. One panel per activation at the largest sigma_b, plus tanh at 0."""
    from matplotlib.colors import LogNorm

    sigma = float(ds.sigma_b.max())
    panels = [(str(a), sigma) for a in ds.activation.values]
    if 0.0 in ds.sigma_b.values:
        panels.append(("tanh", 0.0))
    norms = [ds.grad_norm.sel(activation=a, sigma_b=s).median("seed").values for a, s in panels]
    positive = np.concatenate([n[n > 0] for n in norms])
    norm = LogNorm(vmin=max(positive.min(), 1e-40), vmax=positive.max())
    cols = 3
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7.2, 2.5 * rows + 0.6), squeeze=False,
                             sharex=True, sharey=True, layout="constrained")
    cmap = plt.get_cmap("viridis").with_extremes(bad="#d9d9d9")
    for ax, (act, s), grid in zip(axes.flat, panels, norms):
        data = np.ma.masked_equal(grid.T, 0.0)  # (layer, step)
        image = ax.imshow(data, origin="lower", aspect="auto", cmap=cmap, norm=norm,
                          extent=(-0.5, grid.shape[0] - 0.5, 0.5, grid.shape[1] + 0.5))
        ax.set_title(f"{act}, sigma_b = {s:g}")
        ax.grid(False)
    for ax in axes[-1]:
        ax.set_xlabel("training step")
    for ax in axes[:, 0]:
        ax.set_ylabel("weight layer (1 = input)")
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    fig.colorbar(image, ax=axes.ravel().tolist(), label="median ||dL/dW|| (grey: exactly 0)")
    fig.suptitle("\n".join(textwrap.wrap(
        f"Unlock staircase: depth-{ds.sizes['weight_layer']} networks with W = 0 and biases "
        f"N(0, sigma_b^2), plain GD; median over {ds.sizes['seed']} seeds", 110)), fontsize=8.5)
    return fig


RECORD_AXES = ("seed", "step", "layer", "grad_step", "weight_layer", "sigma_b")


def squeeze_grid(ds):
    """Drop grid axes of length one (e.g. a one-activation grid), keeping the record axes."""
    return ds.squeeze([d for d in ds.dims if ds.sizes[d] == 1 and d not in RECORD_AXES],
                      drop=True)


def fig_escape(datasets):
    """Median unit spread and direction diversity (first hidden layer) vs step, one line per
    sigma_b; one column per dtype. Log-log axes: exponential growth shows as a steep rise whose
    onset moves right by a constant amount per decade of sigma_b."""
    datasets = sorted((squeeze_grid(ds) for ds in datasets), key=lambda ds: ds.attrs["dtype"])
    fig, axes = plt.subplots(2, len(datasets), figsize=(3.2 * len(datasets) + 1, 5.6),
                             squeeze=False, sharex=True, sharey="row")
    for col, ds in enumerate(datasets):
        steps = np.maximum(ds.step.values, 1)
        for i, s in enumerate(ds.sigma_b.values):
            colour = plt.get_cmap("viridis")(i / max(ds.sizes["sigma_b"] - 1, 1))
            for row, name in enumerate(("spread", "diversity")):
                curve = ds[name].sel(sigma_b=s).isel(layer=0).median("seed").values
                axes[row, col].plot(steps, np.maximum(curve, 1e-18), color=colour,
                                    label=f"{s:.0e}")
        for row, label in enumerate(("unit spread (relative)", "direction diversity s2/s1")):
            ax = axes[row, col]
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_ylim(1e-18, 3)
            if col == 0:
                ax.set_ylabel(label)
        axes[0, col].set_title(f"{ds.attrs['dtype']}")
        axes[1, col].set_xlabel("training step (step 0 drawn at 1)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, title="sigma_b", loc="lower center",
               ncol=min(len(labels), 9), frameon=False, fontsize=7)
    fig.suptitle("\n".join(textwrap.wrap(
        f"Escape from the symmetric saddle: tanh teacher-student, constant W, biases "
        f"N(0, sigma_b^2); median over {datasets[0].sizes['seed']} seeds (values < 1e-18 drawn "
        "at 1e-18)", 110)), fontsize=8.5)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return fig


def fig_noise_dose(ds):
    """P(broken) (Wilson 95% band) and median step to break vs the per-step relative noise,
    one line per activation; noise = 0 drawn a decade left of the smallest dose."""
    from jaxsym.analysis import stats

    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.4))
    noise = ds.noise.values
    x = _sigma_positions(noise)
    acts = [str(a) for a in ds.activation.values] if "activation" in ds.dims else [None]
    for act in acts:
        d = ds.sel(activation=act) if act is not None else ds
        n = d.sizes["seed"]
        k = d.broken.sum("seed").values
        low, high = stats.wilson_interval(k, n)
        axes[0].plot(x, k / n, marker="o", label=act)
        axes[0].fill_between(x, low, high, alpha=0.2)
        med = [stats.median_time(d.sel(noise=v).time_to_break.values,
                                 d.sel(noise=v).broken.values).median for v in noise]
        axes[1].plot(x, np.where(np.isfinite(med), med, np.nan), marker="o", label=act)
    for ax in axes:
        _log_axis(ax, noise)
        ax.set_xlabel("per-step relative parameter noise")
    axes[0].set_ylabel("P(symmetry broken)")
    axes[1].set_ylabel("median step to break (broken networks)")
    axes[0].legend()
    fig.suptitle(f"Noise dose at sigma_b = 0, {ds.attrs['dtype']}, {ds.sizes['seed']} seeds "
                 "per point", fontsize=8.5)
    fig.tight_layout()
    return fig


def fig_predict(panels):
    """The whole curve, predicted and measured, per data draw: one row per ``(ds, rows,
    predictions)`` (``rows`` from :func:`jaxsym.theory.escape.compare`, ``predictions`` from
    :func:`jaxsym.theory.escape.predict_pooled`), one column per cell (e.g. activation).
    Lines: each draw's predicted median step to break over a fine sigma_b grid (band: its
    predicted 10-90% quantiles); markers: that draw's measured Kaplan-Meier medians with 95%
    CIs."""
    n_cols = max(len(p[2]) for p in panels)
    fig, axes = plt.subplots(len(panels), n_cols, figsize=(3.3 * n_cols, 3.0 * len(panels)),
                             squeeze=False)
    for row_axes, (ds, rows, predictions) in zip(axes, panels):
        sigma = ds.sigma_b.values
        fine = np.logspace(np.log10(sigma.min()), np.log10(sigma.max()), 120)
        for ax, ((categorical, _), pooled) in zip(row_axes, predictions.items()):
            draws = getattr(pooled, "draws", [pooled])
            for k, pred in enumerate(draws):
                colour = PALETTE[k % len(PALETTE)]
                curves = {q: np.array([pred.time_quantile(s, q) for s in fine])
                          for q in (0.1, 0.5, 0.9)}
                ax.plot(fine, np.where(np.isfinite(curves[0.5]), curves[0.5], np.nan),
                        color=colour, lw=1.0, label=f"draw {k}: predicted")
                ax.fill_between(fine, np.where(np.isfinite(curves[0.9]), curves[0.9], np.nan),
                                np.where(np.isfinite(curves[0.1]), curves[0.1], np.nan),
                                color=colour, alpha=0.12, lw=0)
                key = k if len(draws) > 1 else None
                mine = [r for r in rows if r["cell"] == dict(categorical) and r["draw"] == key
                        and r["measured"].reached]
                x = np.array([r["sigma_b"] for r in mine])
                y = np.array([r["measured"].median for r in mine])
                lo = np.array([r["measured"].low for r in mine])
                hi = np.array([r["measured"].high if np.isfinite(r["measured"].high) else
                               r["measured"].median for r in mine])
                ax.errorbar(x, y, yerr=[y - lo, hi - y], fmt="o", ms=3, color=colour,
                            mfc="white", capsize=1.5, lw=0.8,
                            label=f"draw {k}: measured")
            _log_axis(ax, sigma)
            depth = len(ds.attrs["layer_sizes"]) - 1
            ax.set_title(f"{ds.attrs['task']} / {LOSS_LABELS.get(_loss(ds), _loss(ds))}"
                         + (f", depth {depth}" if depth > 2 else "") + ": "
                         + ", ".join(str(v) for _, v in categorical), fontsize=8)
        row_axes[0].set_ylabel("step at which layer 1 breaks")
    axes[0, -1].legend(fontsize=6, ncol=2)
    fig.suptitle("\n".join(textwrap.wrap(
        "Linearised escape (one symmetric trajectory per data draw, no fitted parameter) "
        "against the sweep; lines: predicted median (band 10-90%), markers: measured "
        "Kaplan-Meier median (95% CI)", 40 * n_cols)), fontsize=8.5)
    fig.tight_layout()
    return fig


def fig_saddle(ds, analysis, fits):
    """Left: per-sigma median steps to break and to converge (bars: interquartile range) vs
    log10(1/sigma_b), the fitted log-law lines, and the predicted slope (dotted, through the
    fitted line's centre). Right: the local slope ``ln 10 / log growth`` of an antisymmetric
    perturbation along the symmetric trajectory, against the prediction, with the range of
    measured steps to break shaded: the slope matches where the escapes happen after the
    approach to the saddle.

    ``analysis``: :class:`jaxsym.theory.saddle.SaddleAnalysis`; ``fits``: ``{"time_to_break":
    LogLawFit, "time_to_converge": LogLawFit}``.
    """
    ds = squeeze_grid(ds)
    sigma = ds.sigma_b.values
    x = np.log10(1.0 / sigma)
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.2, 3.3))
    for i, (name, label) in enumerate((("time_to_break", "break"),
                                       ("time_to_converge", "converge"))):
        times = ds[name].values
        q1, med, q3 = np.percentile(times, [25, 50, 75], axis=-1)
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


def fig_phase_diagram(table, xi_multiples=(3.0, 6.0)):
    """Fraction of seeds trained over (sigma_w^2, depth), with depth = k xi_c(sigma_w^2) from
    mean-field theory overlaid and the critical sigma_w^2 marked. ``table``: from
    :func:`jaxsym.reporting.phase_table`. Grid cells have equal widths (one column per sigma_w^2,
    the bias-only column sigma_w^2 = 0 first); the theory curves are placed between columns by
    linear interpolation in sigma_w."""
    from jaxsym.theory import meanfield

    act, sb2 = table["activation"], table["sigma_b2"]
    frac = table["trained"] / table["seeds"][:, None]
    sigma_w = np.sqrt(table["sigma_w2"])
    columns = np.arange(len(sigma_w))
    rows = np.arange(len(table["depth"]))
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    mesh = ax.pcolormesh(np.arange(len(sigma_w) + 1) - 0.5, np.arange(len(rows) + 1) - 0.5,
                         frac, cmap="viridis", vmin=0, vmax=1, shading="flat")
    fig.colorbar(mesh, ax=ax, label="fraction of seeds trained")
    positive = sigma_w > 0
    fine = np.linspace(sigma_w[positive].min(), sigma_w.max(), 80)
    x_fine = np.interp(fine, sigma_w, columns)
    xi = np.array([meanfield.depth_scales(act, s * s, sb2)[1] for s in fine])
    depth = table["depth"].astype(float)
    for k, style in zip(xi_multiples, ("--", "-")):
        # depth -> row position by the same piecewise-linear map (clipped at the edges)
        y = np.interp(np.minimum(k * xi, 1e6), depth, rows, left=-0.5, right=len(rows) - 0.5)
        ax.plot(x_fine, y, style, color="white", lw=1.3, label=f"depth = {k:g} xi_c")
    critical = float(meanfield.critical_sigma_w2(act, sb2))
    ax.axvline(np.interp(np.sqrt(critical), sigma_w, columns), color=PALETTE[1], lw=1.2,
               ls=":", label=f"critical sigma_w^2 = {critical:.2f}")
    ax.set_xticks(columns, [f"{s:.3g}" for s in table["sigma_w2"]], fontsize=7)
    ax.set_yticks(rows, [str(d) for d in table["depth"]])
    ax.set_xlim(-0.5, len(sigma_w) - 0.5)
    ax.set_ylim(-0.5, len(rows) - 0.5)
    ax.set_xlabel("sigma_w^2 (first column: biases only, sigma_w = 0)")
    ax.set_ylabel("depth (weight layers)")
    ax.grid(False)
    ax.legend(loc="upper right", fontsize=6.5, framealpha=0.7)
    ax.set_title("\n".join(textwrap.wrap(
        f"Trainability of deep {act} networks, sigma_b^2 = {sb2:.3g}: fraction of "
        f"{int(table['seeds'].min())} seeds reaching training accuracy "
        f"{table['threshold']:.2f} (halfway from chance to 1)", 80)))
    fig.tight_layout()
    return fig


def overview_axes(summary) -> tuple[str | None, list[str]]:
    """``(x axis, the other grid dims)`` of :func:`fig_overview` for a summary Dataset."""
    dims = [d for d in summary.p_broken_p.dims]
    numeric = [d for d in NUMERIC_X if d in dims and summary.sizes[d] > 1]
    x = numeric[0] if numeric else next((d for d in dims if summary.sizes[d] > 1), None)
    return x, [d for d in dims if d != x]


def _x_scale(values) -> str:
    """"log" for non-negative numbers spanning > 50x, "linear" for other numbers, else
    "categorical"."""
    values = np.asarray(values)
    if values.dtype.kind not in "fiu":
        return "categorical"
    positive = values[values > 0]
    if (values >= 0).all() and positive.size > 1 and positive.max() / positive.min() > 50:
        return "log"
    return "linear"


def fig_overview(summary):
    """P(broken) (Wilson band) and the KM median steps to converge and to break (CI bars) per
    grid point of
    any study (``summary``: :func:`jaxsym.analysis.summary`): x is the first numeric grid axis
    (log scale when it spans decades, 0 at the left edge), else the first grid axis; one curve
    per combination of the other grid dims (at most :data:`OVERVIEW_CURVES`)."""
    import itertools

    x_dim, others = overview_axes(summary)
    budget = summary.attrs["budget"]
    xs = np.asarray(summary[x_dim].values) if x_dim else np.zeros(1)
    scale = _x_scale(xs) if x_dim else "categorical"
    positions = {"log": lambda: _sigma_positions(xs.astype(float)),
                 "linear": lambda: xs.astype(float),
                 "categorical": lambda: np.arange(len(xs), dtype=float)}[scale]()
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6), constrained_layout=True)
    combos = list(itertools.product(*(range(summary.sizes[d]) for d in others)))
    for i, combo in enumerate(combos[:OVERVIEW_CURVES]):
        point = summary.isel(dict(zip(others, combo)))
        label = ", ".join(f"{d} = {point[d].values}" for d in others) or summary.attrs["name"]
        colour = PALETTE[i % len(PALETTE)]
        axes[0].plot(positions, np.atleast_1d(point.p_broken_p.values), "o-", color=colour,
                     label=textwrap.shorten(label, 60))
        axes[0].fill_between(positions, np.atleast_1d(point.p_broken_low.values),
                             np.atleast_1d(point.p_broken_high.values), color=colour, alpha=0.15)
        for prefix, style in (("steps_to_converge", "o-"), ("steps_to_break", "s--")):
            med = np.atleast_1d(point[f"{prefix}_median"].values)
            low = np.atleast_1d(point[f"{prefix}_low"].values)
            high = np.minimum(np.atleast_1d(point[f"{prefix}_high"].values), budget)
            shown = np.isfinite(med)
            axes[1].errorbar(positions[shown], med[shown],
                             yerr=[med[shown] - low[shown], high[shown] - med[shown]],
                             fmt=style, color=colour, capsize=2,
                             mfc=colour if prefix == "steps_to_converge" else "none")
            axes[1].plot(positions[~shown], np.full((~shown).sum(), budget), "v", color=colour)
    for ax in axes:
        if scale == "log":
            ax.set_xscale("log")
            ax.minorticks_off()
            keep = slice(None) if len(xs) <= 8 else slice(None, None, -(-len(xs) // 8))
            ax.set_xticks(positions[keep], ["0" if v == 0 else f"{v:.0e}" for v in xs[keep]])
        elif scale == "categorical":
            ax.set_xticks(positions, [str(v) for v in xs] if x_dim else [""])
        ax.set_xlabel(x_dim or "")
    axes[0].set_ylim(-0.03, 1.03)
    axes[0].set_ylabel("P(symmetry broken) (95% Wilson)")
    axes[1].set_ylabel("median steps (KM, 95% CI)")
    axes[1].plot([], [], "ko-", label="to converge")
    axes[1].plot([], [], "ks--", mfc="none", label="to break")
    axes[1].legend(loc="lower left")
    axes[1].axhline(budget, color="grey", lw=0.8, ls="--")
    axes[1].text(0.99, 0.5, f"budget {budget} steps (v: median not reached)", ha="right",
                 transform=axes[1].transAxes, va="top", fontsize=7)
    axes[0].legend(loc="best")
    fig.suptitle(summary.attrs["name"] + ("" if len(combos) <= OVERVIEW_CURVES else
                                          f" (first {OVERVIEW_CURVES} of {len(combos)} curves)"))
    return fig


def save(fig, directory: Path, stem: str) -> list[Path]:
    """Write ``fig`` as ``stem.png`` and ``stem.pdf`` in ``directory``; returns the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{stem}.png", directory / f"{stem}.pdf"]
    fig.savefig(paths[0], dpi=130)
    fig.savefig(paths[1], metadata={"CreationDate": None})
    plt.close(fig)
    return paths
