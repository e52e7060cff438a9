"""Helpers every section analysis shares: selecting and squeezing result datasets, the study a
result came from, and the rounding rule (unit roundoff of a dtype).

Contract: pure functions of ``xarray.Dataset`` objects read from ``results.nc`` (no JAX, no
I/O). A result dataset's dims are its grid axes plus the per-network dims of
:data:`jaxsym.core.records.NETWORK_DIMS`.
"""

from __future__ import annotations

import json

import numpy as np

from jaxsym.core.records import NETWORK_DIMS

__all__ = ["squeeze_grid", "weight_modes", "select_mode", "loss_of", "study_sections",
           "study_of", "unit_roundoff", "KEEP_DIMS"]

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
