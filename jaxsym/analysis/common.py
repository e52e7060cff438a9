"""Helpers every section analysis shares: selecting and squeezing result datasets, the study a
result came from, and the rounding rule (unit roundoff of a dtype).

Contract: pure functions of ``xarray.Dataset`` objects read from ``results.nc`` (no JAX, no
I/O). A result dataset's dims are its grid axes plus the per-network dims of
:data:`jaxsym.core.records.NETWORK_DIMS`.
"""

from __future__ import annotations

import json

from jaxsym.core.records import NETWORK_DIMS

__all__ = ["squeeze_grid", "weight_modes", "select_mode", "loss_of", "study_sections",
           "study_of", "unit_roundoff", "ROUNDING_ROUNDOFFS", "rounding_limit",
           "below_rounding", "ROUNDING_RULE", "KEEP_DIMS", "is_classification", "test_score"]

#: THE rounding rule of every section: a sigma_b (or a relative noise dose) below this many unit
#: roundoffs u of the dtype a network trains in is not a conclusion -- there the initial
#: asymmetry is partly a rounding residue of the non-symmetric arithmetic, which differs between
#: CPUs. Fits start at it; thresholds below it are marked.
ROUNDING_ROUNDOFFS = 100.0
#: the rule in words, for captions
ROUNDING_RULE = (f"one rounding rule for the whole report: a sigma_b (or relative noise) below "
                 f"{ROUNDING_ROUNDOFFS:g} unit roundoffs u of the training dtype (float64: "
                 f"{ROUNDING_ROUNDOFFS * 2.0 ** -53:.1e}, float32: "
                 f"{ROUNDING_ROUNDOFFS * 2.0 ** -24:.1e}, bfloat16: "
                 f"{ROUNDING_ROUNDOFFS * 2.0 ** -8:.2g}) is not a conclusion: there the initial "
                 "asymmetry is partly a rounding residue, which differs between CPUs")

#: dims :func:`squeeze_grid` never drops: the per-network dims and the sigma_b axis
KEEP_DIMS = NETWORK_DIMS + ("sigma_b",)


def squeeze_grid(ds):
    """Drop grid axes of length one (e.g. a one-activation grid), keeping :data:`KEEP_DIMS`."""
    return ds.squeeze([d for d in ds.dims if ds.sizes[d] == 1 and d not in KEEP_DIMS],
                      drop=True)


def weight_modes(ds, include_baseline: bool = False) -> list[str]:
    """The weight init schemes of a dataset's ``weight_mode`` grid axis (``["constant"]``
    without one), the Glorot baseline left out unless ``include_baseline``."""
    modes = [str(m) for m in ds.weight_mode.values] if "weight_mode" in ds.dims else ["constant"]
    return [m for m in modes if include_baseline or m != "glorot"]


def select_mode(ds, mode: str):
    """The part of ``ds`` with weight init scheme ``mode`` (``ds`` itself without the axis)."""
    return ds.sel(weight_mode=mode) if "weight_mode" in ds.dims else ds


def study_sections(ds) -> dict:
    """The resolved config sections a result was trained with (``{section: {key: value}}``)."""
    return json.loads(ds.attrs["study"])["sections"]


def loss_of(ds) -> str:
    """The loss a result was trained with (``train.loss``)."""
    return study_sections(ds)["train"]["loss"]


def study_of(ds):
    """The :class:`jaxsym.study.config.Study` a result dataset was run from."""
    from jaxsym.study.config import Study

    return Study.from_dataset(ds)


def unit_roundoff(dtype: str) -> float:
    """u = eps / 2 of a float dtype (bfloat16 through ml_dtypes, which jax ships)."""
    import ml_dtypes

    return float(ml_dtypes.finfo(dtype).eps) / 2.0


def rounding_limit(dtype: str) -> float:
    """:data:`ROUNDING_ROUNDOFFS` unit roundoffs of ``dtype``: the smallest sigma_b (or relative
    noise) that is a conclusion."""
    return ROUNDING_ROUNDOFFS * unit_roundoff(dtype)


def below_rounding(value, dtype: str) -> bool:
    """``value`` (a sigma_b or noise > 0) is below :func:`rounding_limit` of ``dtype``."""
    return (value is not None and dtype is not None
            and 0 < float(value) < rounding_limit(dtype))


def is_classification(ds) -> bool:
    """Whether ``ds`` holds a classification run (it records ``test_accuracy``)."""
    return "test_accuracy" in ds.data_vars


def test_score(cell):
    """The test score of the networks of ``cell`` (:class:`jaxsym.analysis.stats.MeanInterval`):
    the mean final test accuracy with its Student-t 95% CI clipped to [0, 1] for
    classification, the geometric-mean final test loss (CI on log10) for regression."""
    from jaxsym.analysis import stats

    if is_classification(cell):
        return stats.mean_interval(cell.test_accuracy.values, bounds=(0.0, 1.0))
    return stats.mean_interval(cell.test_loss.values, log=True)
