"""The noise-dose section: a per-step relative parameter noise (an emulated non-deterministic
kernel, noise that BREAKS the symmetry) at sigma_b = 0, as a dose.

Contract: :func:`render` ``(numbers, figures_dir) -> list of markdown lines`` from
:func:`jaxsym.analysis.noise_dose.analyse`; draws ``noise_dose``.
"""

from __future__ import annotations

import numpy as np

from jaxsym.analysis import stats
from jaxsym.reporting.common import setup_table
from jaxsym.reporting.plotting import log_axis, plt, save, sigma_positions

__all__ = ["render"]


def _curve_text(curve) -> str:
    act, dose, fit, ok = curve["activation"], curve["dose"], curve["fit"], curve["fit_noise"]
    text = f"**{act}**: P(broken) = {curve['p_zero']:.2f} without noise; "
    text += (f"the smallest dose with P(broken) >= 0.9 is noise = {dose:.0e}"
             + (" (below the rounding limit: not a conclusion)"
                if curve.get("dose_below_rounding") else "") + ". "
             if dose is not None else "no dose reached P(broken) >= 0.9. ")
    if fit is not None:
        text += (f"Over noise in [{ok[0]:.0e}, {ok[-1]:.0e}] the time to break grows by "
                 f"{fit.b:.0f} [{fit.b_low:.0f}, {fit.b_high:.0f}] steps per decade of "
                 "smaller noise: a per-step kick of relative size noise plays the role "
                 "of the initial bias spread (compare the escape experiment's float64 "
                 "log-law, same network).")
    return text


def _noise_text(run) -> str:
    """Noise dose: P(broken) and times vs the per-step relative parameter noise, sigma_b = 0."""
    budget = run["ds"].attrs["steps"]
    lines = ["| activation | noise | P(broken) [95% CI] | median step to break | effective "
             "sigma_b | median step to converge |", "|---|---|---|---|---|---|"]
    for curve in run["curves"]:
        for level in curve["levels"]:
            eff = level.get("sigma_eff", float("nan"))
            lines.append(f"| {curve['activation']} | {level['noise']:.0e} | "
                         f"{level['k'] / level['n']:.2f} [{level['low']:.2f}, "
                         f"{level['high']:.2f}] | {stats.format_median(level['break'], budget)} "
                         f"| {'n/a' if eff != eff else f'{eff:.1e}'} "
                         f"| {stats.format_median(level['converge'], budget)} |")
    lines += ["", "Effective sigma_b: the initial bias spread (sigma_b, no noise) whose median "
              "break the linearised escape of the same network predicts at the measured median "
              "step: the dose read as an initial asymmetry (n/a: no median within the budget). "
              "The noise here differs from unit to unit and breaks the symmetry by itself; the "
              "minibatch and label noise of the stochastic section are the same for every unit "
              "and only change how fast an existing spread grows or shrinks."]
    return "\n\n".join([_curve_text(c) for c in run["curves"]] + ["\n".join(lines)])


def fig_noise_dose(ds, figure):
    """P(broken) (Wilson 95% band) and median step to break vs the per-step relative noise,
    one line per activation; noise = 0 drawn a decade left of the smallest dose."""
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.4))
    noise = ds.noise.values
    x = sigma_positions(noise)
    for act, numbers in figure:
        axes[0].plot(x, numbers["p"], marker="o", label=act)
        axes[0].fill_between(x, numbers["low"], numbers["high"], alpha=0.2)
        med = numbers["median_break"]
        axes[1].plot(x, np.where(np.isfinite(med), med, np.nan), marker="o", label=act)
    for ax in axes:
        log_axis(ax, noise)
        ax.set_xlabel("per-step relative parameter noise")
    axes[0].set_ylabel("P(symmetry broken)")
    axes[1].set_ylabel("median step to break (broken networks)")
    axes[0].legend()
    fig.suptitle(f"Noise dose at sigma_b = 0, {ds.attrs['dtype']}, {ds.sizes['seed']} seeds "
                 "per point", fontsize=8.5)
    fig.tight_layout()
    return fig


def render(numbers, figures_dir) -> list[str]:
    """The section's markdown lines (and the ``noise_dose`` figure of each run)."""
    lines = []
    for run in numbers["runs"]:
        save(fig_noise_dose(run["ds"], run["figure"]), figures_dir, "noise_dose")
        lines += ["## Hardware-like noise as a dose (sigma_b = 0)", "", _noise_text(run), "",
                  "### Setup", "", setup_table(run["ds"]), "", "![noise dose](noise_dose.png)",
                  ""]
    return lines
