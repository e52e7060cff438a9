"""The unlock-staircase section (W = 0, random biases): one weight layer unlocks per step from
the output down.

Contract: :func:`render` ``(numbers, figures_dir) -> list of markdown lines`` from
:func:`jaxsym.analysis.staircase.analyse`; draws ``staircase``.
"""

from __future__ import annotations

import textwrap

import numpy as np

from jaxsym.reporting.common import setup_table
from jaxsym.reporting.plotting import plt, save

__all__ = ["render"]


def _staircase_text(run) -> str:
    ds, span = run["ds"], run["span"]
    depth = ds.sizes["weight_layer"]
    lines = []
    for (act, s), steps in run["unlock"].items():
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


def fig_staircase(ds, heatmaps):
    """Heatmaps (weight layer x step) of the median ||dLoss/dW_layer|| over seeds, log colour;
    exact zeros in grey. One panel per activation at the largest sigma_b, plus tanh at 0
    (``heatmaps``: :func:`jaxsym.analysis.staircase.heatmaps`)."""
    from matplotlib.colors import LogNorm

    panels = [(a, s) for a, s, _ in heatmaps]
    norms = [grid for _, _, grid in heatmaps]
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


def render(numbers, figures_dir) -> list[str]:
    """The section's markdown lines (and the ``staircase`` figure, one per run: the last
    run's is kept)."""
    lines = []
    for run in numbers["runs"]:
        save(fig_staircase(run["ds"], run["heatmaps"]), figures_dir, "staircase")
        lines += ["## The unlock staircase (W = 0, random biases)", "", _staircase_text(run),
                  "", "### Setup", "", setup_table(run["ds"]), "",
                  "![staircase](staircase.png)", ""]
    return lines
