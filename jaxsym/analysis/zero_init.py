"""Numbers of the W = 0 section: P(hidden layer broken), time to break, final diversity and
test accuracy per batch mode, optimizer, weight mode, sigma_b and learning rate.

Contract: :func:`analyse` ``(entries) -> dict`` for :mod:`jaxsym.reporting.zero_init`; pure.
"""

from __future__ import annotations

from jaxsym.analysis import stats
from jaxsym.analysis.common import study_sections

__all__ = ["zero_init_table", "analyse"]


def zero_init_table(datasets) -> list[dict]:
    """The ``zero_init`` runs: one row per batch mode, optimizer, weight mode, sigma_b and
    learning rate: P(hidden layer broken) (Wilson 95%), the Kaplan-Meier median step to break,
    the final diversity s2/s1 (median over seeds) and the mean test accuracy (+- sd)."""
    rows = []
    for ds in datasets:
        batch = study_sections(ds)["train"]["batch_size"]
        for opt in ds.optimizer.values:
            for mode in ds.weight_mode.values:
                for sigma in ds.sigma_b.values:
                    for lr in ds.learning_rate.values:
                        one = ds.sel(optimizer=opt, weight_mode=mode, sigma_b=sigma,
                                     learning_rate=lr)
                        rows.append(_row(one, batch, opt, mode, sigma, lr, ds.attrs["steps"]))
    return rows


def _row(one, batch, opt, mode, sigma, lr, steps) -> dict:
    broken = one.broken.values
    low, high = stats.wilson_interval(int(broken.sum()), broken.size)
    return {"batch": "full" if batch == 0 else str(batch), "optimizer": str(opt),
            "weight_mode": str(mode), "sigma_b": float(sigma), "lr": float(lr),
            "p_broken": float(broken.mean()), "p_low": float(low), "p_high": float(high),
            "median": stats.median_time(one.time_to_break.values, broken),
            "diversity": float(one.diversity.isel(layer=0, step=-1).median("seed")),
            "accuracy": float(one.test_accuracy.mean()),
            "accuracy_sd": float(one.test_accuracy.std()), "steps": int(steps)}


def analyse(entries) -> dict:
    """``{"datasets", "rows"}``."""
    datasets = [ds for ds, _ in entries]
    return {"datasets": datasets, "rows": zero_init_table(datasets)}
