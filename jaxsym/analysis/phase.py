"""Numbers of the phase-diagram section: which (sigma_w^2, depth) deep networks train, against
mean-field theory's depth scale xi_c and critical line (:mod:`jaxsym.theory.meanfield`).

Contract: :func:`analyse` ``(entries) -> dict`` for :mod:`jaxsym.reporting.phase`; the theory
here is NumPy quadrature (cheap: not cached).
"""

from __future__ import annotations

import numpy as np

from jaxsym.analysis.common import squeeze_grid, study_of

__all__ = ["PHASE_XI_MULTIPLES", "phase_table", "analyse"]

#: depth multiples of xi_c drawn on the phase diagram (Schoenholz et al. 2017 use 6 xi_c)
PHASE_XI_MULTIPLES = (3.0, 6.0)
#: points of the theory curves on the figure
CURVE_POINTS = 80


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
        acc = squeeze_grid(ds).final_accuracy.values  # (W_std, seed)
        trained.append((acc >= threshold).sum(axis=-1))
        seeds.append(acc.shape[-1])
    return {"sigma_w2": sigma_w ** 2, "depth": np.array([len(d.attrs["layer_sizes"]) - 1
                                                         for d in datasets]),
            "trained": np.array(trained), "seeds": np.array(seeds), "threshold": threshold,
            "chance": chance, "sigma_b2": study.get("init.sigma_b") ** 2,
            "activation": study.get("model.activation")}


def _theory(table) -> dict:
    """Mean-field numbers the section shows: the critical sigma_w^2, xi_c at every positive
    grid sigma_w^2 and on a fine curve for the figure, and the bias-only fixed point."""
    from jaxsym.theory import meanfield

    act, sb2 = table["activation"], table["sigma_b2"]
    positive = table["sigma_w2"] > 0
    sigma_w = np.sqrt(table["sigma_w2"])
    fine = np.linspace(sigma_w[positive].min(), sigma_w.max(), CURVE_POINTS)
    return {"critical": float(meanfield.critical_sigma_w2(act, sb2)),
            "xi": np.array([meanfield.depth_scales(act, s, sb2)[1]
                            for s in table["sigma_w2"][positive]]),
            "fine_sigma_w": fine,
            "fine_xi": np.array([meanfield.depth_scales(act, s * s, sb2)[1] for s in fine]),
            "bias_only": meanfield.mean_field(act, 0.0, sb2)}


def analyse(entries) -> dict:
    """``{"table": phase_table, "theory", "agree" ({k: fraction of (sigma_w^2 > 0, depth)
    cells where "depth <= k xi_c" and "trained by >= half the seeds" agree}), "first" (the
    first run: its setup is shown)}``."""
    datasets = [ds for ds, _ in entries]
    table = phase_table(datasets)
    theory = _theory(table)
    frac = table["trained"] / table["seeds"][:, None]
    positive = table["sigma_w2"] > 0
    agree = {k: float(np.mean((table["depth"][:, None] <= k * theory["xi"][None, :])
                              == (frac[:, positive] >= 0.5))) for k in PHASE_XI_MULTIPLES}
    return {"table": table, "theory": theory, "agree": agree, "first": datasets[0],
            "xi_multiples": PHASE_XI_MULTIPLES}
