"""Matplotlib plumbing shared by the section figures: the Agg backend, the colour-blind-safe
palette, the sigma_b log axis with sigma_b = 0 at its left edge, shared legends and
:func:`save` (PNG + PDF, no timestamps: the same numbers give the same files).

Contract: drawing only; every number drawn comes from :mod:`jaxsym.analysis`.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxsym.analysis.common import loss_of  # noqa: E402
from jaxsym.reporting.common import LOSS_LABELS, MODE_LABELS  # noqa: E402

__all__ = ["plt", "PALETTE", "sigma_positions", "log_axis", "title", "seeds_label",
           "finish", "save"]

#: Okabe-Ito colour-blind-safe palette
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
           "#000000"]

plt.rcParams.update({"figure.dpi": 110, "font.size": 9, "axes.titlesize": 9,
                     "legend.fontsize": 7.5, "axes.grid": True, "grid.alpha": 0.3})


def sigma_positions(sigma: np.ndarray) -> np.ndarray:
    """x positions: sigma_b itself, and a decade below the smallest positive value for 0."""
    positive = sigma[sigma > 0]
    zero_at = positive.min() / 10.0 if len(positive) else 1.0
    return np.where(sigma > 0, sigma, zero_at)


def log_axis(ax, sigma: np.ndarray) -> None:
    """A log x axis over ``sigma`` with ticks every second decade and "0" for sigma_b = 0."""
    ax.set_xscale("log")
    x = sigma_positions(sigma)
    ticks = [t for t in x[sigma > 0] if np.isclose(np.log10(t) % 2, 0, atol=1e-9)]
    labels = [f"1e{int(round(np.log10(t)))}" for t in ticks]
    if (sigma == 0).any():
        ticks, labels = [x[sigma == 0][0]] + ticks, ["0"] + labels
    ax.set_xticks(ticks, labels)
    ax.minorticks_off()
    ax.set_xlabel("bias-init std sigma_b (dimensionless)")


def title(ds, mode) -> str:
    """``task / loss: weight mode`` of a panel."""
    return (f"{ds.attrs['task']} / {LOSS_LABELS.get(loss_of(ds), loss_of(ds))}: "
            f"{MODE_LABELS.get(mode, mode)}")


def seeds_label(datasets) -> str:
    """The seed counts of several runs, e.g. ``24`` or ``16 / 24``."""
    counts = sorted({int(ds.sizes["seed"]) for ds in datasets})
    return " / ".join(str(c) for c in counts)


def finish(fig, axes, text: str) -> None:
    """Shared legend under the panels, wrapped title on top."""
    handles, labels = axes.flat[0].get_legend_handles_labels()
    ncol = min(len(labels), 6)
    rows = -(-len(labels) // ncol) if labels else 1
    fig.legend(handles, labels, title="activation", loc="lower center", ncol=ncol,
               frameon=False)
    fig.suptitle("\n".join(textwrap.wrap(text, 110)), fontsize=8.5)
    fig.tight_layout(rect=(0, 0.035 + 0.035 * rows, 1, 1))


def save(fig, directory: Path, stem: str) -> list[Path]:
    """Write ``fig`` as ``stem.png`` and ``stem.pdf`` in ``directory``; returns the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{stem}.png", directory / f"{stem}.pdf"]
    fig.savefig(paths[0], dpi=130)
    fig.savefig(paths[1], metadata={"CreationDate": None})
    plt.close(fig)
    return paths
