"""Theory predictions computed once per study and cached next to ``results.nc``.

Contract: :func:`cached` ``(kind, study, run_dir, compute)`` returns ``compute(study)``, reading
it from ``RUN_DIR/predictions/KIND.json`` when that file was written for the same study
(:func:`jaxsym.engine.store.study_identity`) by the same code (a digest of the sources of
:mod:`jaxsym.core`, :mod:`jaxsym.study` and :mod:`jaxsym.theory`, the study registry
:mod:`jaxsym.study.experiments` excepted), else computing and writing it
(atomically; a run directory that cannot be written is left alone). Rendering a report twice
therefore trains and compiles nothing the second time, and a caption edit costs no JAX compile.

The file is JSON: the theory's frozen dataclasses
(:class:`~jaxsym.theory.escape.EscapePrediction`, :class:`~jaxsym.theory.escape.PooledPrediction`,
:class:`~jaxsym.theory.classify.CellPrediction`, :class:`~jaxsym.theory.saddle.SaddleAnalysis`,
:class:`~jaxsym.theory.saddle.SaddleSpectrum`) with their arrays, tuples and dicts with tuple
keys, encoded so that :func:`decode` rebuilds them exactly (floats through ``repr``, which
round-trips, ``inf`` and ``nan`` included).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path

import numpy as np

__all__ = ["cached", "encode", "decode", "code_digest"]

#: the packages whose sources a prediction depends on
_SOURCE_PACKAGES = ("core", "study", "theory")
#: sources in those packages that no prediction depends on: the registry of what ``jaxsym
#: study`` runs (a run's config, which it may override, is part of the key through its study
#: identity), so registering an experiment keeps every cached prediction
_NOT_SOURCES = ("study/experiments.py",)


def _types() -> dict:
    from jaxsym.theory.classify import CellPrediction
    from jaxsym.theory.escape import EscapePrediction, PooledPrediction
    from jaxsym.theory.saddle import SaddleAnalysis, SaddleSpectrum

    return {cls.__name__: cls for cls in (EscapePrediction, PooledPrediction, CellPrediction,
                                          SaddleAnalysis, SaddleSpectrum)}


def encode(value):
    """A JSON-ready form of ``value`` (see the module doc); inverse: :func:`decode`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__type__": type(value).__name__,
                **{f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, np.ndarray):
        return {"__array__": value.ravel().tolist(), "dtype": value.dtype.str,
                "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {"__items__": [[encode(k), encode(v)] for k, v in value.items()]}
    return value


def decode(value, types=None):
    """The object :func:`encode` encoded."""
    types = _types() if types is None else types
    if isinstance(value, list):
        return [decode(v, types) for v in value]
    if not isinstance(value, dict):
        return value
    if "__type__" in value:
        fields = {k: decode(v, types) for k, v in value.items() if k != "__type__"}
        return types[value["__type__"]](**fields)
    if "__array__" in value:
        return np.asarray(value["__array__"], np.dtype(value["dtype"])).reshape(value["shape"])
    if "__tuple__" in value:
        return tuple(decode(v, types) for v in value["__tuple__"])
    return {decode(k, types): decode(v, types) for k, v in value["__items__"]}


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """SHA-256 of the sources a prediction depends on (:data:`_SOURCE_PACKAGES`)."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for package in _SOURCE_PACKAGES:
        for path in sorted((root / package).glob("*.py")):
            if f"{package}/{path.name}" in _NOT_SOURCES:
                continue
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _key(kind: str, study) -> str:
    from jaxsym.engine.store import study_identity

    return hashlib.sha256(json.dumps([kind, study_identity(study), code_digest()]).encode()
                          ).hexdigest()


def cached(kind: str, study, run_dir, compute):
    """``compute(study)``, cached in ``run_dir/predictions/KIND.json`` (``run_dir`` None: not
    cached)."""
    if run_dir is None:
        return compute(study)
    path = Path(run_dir) / "predictions" / f"{kind}.json"
    key = _key(kind, study)
    try:
        stored = json.loads(path.read_text())
        if stored.get("key") == key:
            return decode(stored["value"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    value = compute(study)
    text = json.dumps({"key": key, "kind": kind, "value": encode(value)})
    try:
        from jaxsym.engine.store import write_atomic

        path.parent.mkdir(exist_ok=True)
        write_atomic(path, lambda f: f.write(text.encode()))
    except OSError:
        pass  # a read-only run directory: the prediction is used, not kept
    return value
