"""Numbers of the unlock-staircase section (W = 0, random biases): the step at which each
weight layer's gradient first moves, and the median gradient norms.

Contract: :func:`analyse` ``(entries) -> dict`` for :mod:`jaxsym.reporting.staircase`; pure.
"""

from __future__ import annotations

import numpy as np

__all__ = ["unlock_steps", "analyse"]


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


def heatmaps(ds) -> list[tuple[str, float, np.ndarray]]:
    """The figure's panels: ``(activation, sigma_b, median ||dL/dW|| over seeds (step,
    layer))`` for every activation at the largest sigma_b, plus tanh at sigma_b = 0."""
    sigma = float(ds.sigma_b.max())
    panels = [(str(a), sigma) for a in ds.activation.values]
    if 0.0 in ds.sigma_b.values:
        panels.append(("tanh", 0.0))
    return [(a, s, ds.grad_norm.sel(activation=a, sigma_b=s).median("seed").values)
            for a, s in panels]


def analyse(entries) -> dict:
    """``{"runs": [{"ds", "unlock", "span" (decades spanned by the positive median gradient
    norms), "heatmaps"}]}``."""
    runs = []
    for ds, _ in entries:
        medians = ds.grad_norm.median("seed").values
        positive = medians[medians > 0]
        span = np.log10(positive.max() / positive.min()) if positive.size else 0.0
        runs.append({"ds": ds, "unlock": unlock_steps(ds), "span": span,
                     "heatmaps": heatmaps(ds)})
    return {"runs": runs}
