"""The phase-diagram section: trainability of deep networks over (sigma_w^2, depth) against
mean-field theory, and the bias-only edge sigma_w = 0.

Contract: :func:`render` ``(numbers, figures_dir) -> list of markdown lines`` from
:func:`jaxsym.analysis.phase.analyse`; draws ``phase_diagram``.
"""

from __future__ import annotations

import textwrap

import numpy as np

from jaxsym.reporting.common import setup_table
from jaxsym.reporting.plotting import PALETTE, plt, save

__all__ = ["render"]


def _phase_text(numbers) -> str:
    table, theory, agree = numbers["table"], numbers["theory"], numbers["agree"]
    act, sb2, critical = table["activation"], table["sigma_b2"], theory["critical"]
    frac = table["trained"] / table["seeds"][:, None]
    positive = table["sigma_w2"] > 0
    bias_only = table["trained"][:, ~positive].sum(), (table["seeds"] * (~positive).sum()).sum()
    mf0 = theory["bias_only"]
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


def fig_phase_diagram(numbers):
    """Fraction of seeds trained over (sigma_w^2, depth), with depth = k xi_c(sigma_w^2) from
    mean-field theory overlaid and the critical sigma_w^2 marked. ``table``: from
    :func:`jaxsym.analysis.phase.phase_table`. Grid cells have equal widths (one column per sigma_w^2,
    the bias-only column sigma_w^2 = 0 first); the theory curves are placed between columns by
    linear interpolation in sigma_w."""
    table, theory = numbers["table"], numbers["theory"]
    act, sb2 = table["activation"], table["sigma_b2"]
    frac = table["trained"] / table["seeds"][:, None]
    sigma_w = np.sqrt(table["sigma_w2"])
    columns = np.arange(len(sigma_w))
    rows = np.arange(len(table["depth"]))
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    mesh = ax.pcolormesh(np.arange(len(sigma_w) + 1) - 0.5, np.arange(len(rows) + 1) - 0.5,
                         frac, cmap="viridis", vmin=0, vmax=1, shading="flat")
    fig.colorbar(mesh, ax=ax, label="fraction of seeds trained")
    fine = theory["fine_sigma_w"]
    x_fine = np.interp(fine, sigma_w, columns)
    xi = theory["fine_xi"]
    depth = table["depth"].astype(float)
    for k, style in zip(numbers["xi_multiples"], ("--", "-")):
        # depth -> row position by the same piecewise-linear map (clipped at the edges)
        y = np.interp(np.minimum(k * xi, 1e6), depth, rows, left=-0.5, right=len(rows) - 0.5)
        ax.plot(x_fine, y, style, color="white", lw=1.3, label=f"depth = {k:g} xi_c")
    critical = theory["critical"]
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


def render(numbers, figures_dir) -> list[str]:
    """The section's markdown lines (and the ``phase_diagram`` figure)."""
    save(fig_phase_diagram(numbers), figures_dir, "phase_diagram")
    return ["## Phase diagram: signal propagation and the bias-only edge", "",
            _phase_text(numbers), "", "### Setup (one run per depth)", "",
            setup_table(numbers["first"]), "", "![phase diagram](phase_diagram.png)", ""]
