"""Theory predictions computed once per study and cached next to ``results.nc``.

Contract: :func:`cached` ``(kind, study, run_dir, compute)`` returns ``compute(study)``, reading
it from ``RUN_DIR/predictions/KIND.json`` when that file was written for the same study
(:func:`jaxsym.engine.store.study_identity`) by the same code (:func:`code_digest`: the sources
of every module of :mod:`jaxsym.theory` and of every jaxsym module they import, at any depth,
the study registry :mod:`jaxsym.study.experiments` excepted), else computing and writing it
(atomically; a run directory that cannot be written is left alone). The engine's bookkeeping
(:mod:`jaxsym.core.observers`, :mod:`jaxsym.core.metrics`, :mod:`jaxsym.core.records`,
:mod:`jaxsym.core.network`, :mod:`jaxsym.engine`) is outside that closure: speeding up the
engine keeps every cached prediction. Rendering a report twice
therefore trains and compiles nothing the second time, and a caption edit costs no JAX compile.

The file is JSON: the theory's frozen dataclasses
(:class:`~jaxsym.theory.escape.EscapePrediction`, :class:`~jaxsym.theory.escape.PooledPrediction`,
:class:`~jaxsym.theory.classify.CellPrediction`, :class:`~jaxsym.theory.saddle.SaddleAnalysis`,
:class:`~jaxsym.theory.saddle.SaddleSpectrum`) with their arrays, tuples and dicts with tuple
keys, encoded so that :func:`decode` rebuilds them exactly (floats through ``repr``, which
round-trips, ``inf`` and ``nan`` included).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import json
from pathlib import Path

import numpy as np

__all__ = ["cached", "encode", "decode", "code_digest", "prediction_sources"]

#: the package whose modules (and, at any depth, the jaxsym modules they import) a prediction
#: depends on: every prediction is computed by jaxsym.theory
_ROOT_PACKAGE = "theory"
#: sources in that closure that no prediction depends on: the registry of what ``jaxsym
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
    """SHA-256 of the sources a prediction depends on: :func:`prediction_sources`, each file's
    path (relative to the package) and bytes, in path order."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in prediction_sources(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def prediction_sources(root: Path) -> list[Path]:
    """The source files of every module of ``root/theory`` (``root``: the ``jaxsym`` package
    directory) and of every jaxsym module they import, at any depth, with the packages that
    contain them, minus :data:`_NOT_SOURCES`; sorted.

    Imports are read from the sources (``ast``), so the closure does not depend on what this
    process has imported: a module's imports at any level (its functions' too), a package's
    ``__init__`` (run by importing any of its modules) with its module-level imports only (the
    lazy ``__getattr__`` of :mod:`jaxsym._lazy` imports on attribute access, which the modules
    of the closure write as imports)."""
    todo = [(f"jaxsym.{_ROOT_PACKAGE}.{path.stem}", True)
            for path in (root / _ROOT_PACKAGE).glob("*.py") if path.stem != "__init__"]
    seen: dict[str, Path] = {}
    while todo:
        name, everywhere = todo.pop()
        if name in seen or (path := _module_file(root, name)) is None:
            continue
        seen[name] = path
        parts = name.split(".")
        todo += [(".".join(parts[:i]), False) for i in range(1, len(parts))]
        todo += [(module, True) for module in _imports(name, path, everywhere)]
    skipped = {root / source for source in _NOT_SOURCES}
    return sorted(path for path in set(seen.values()) if path not in skipped)


def _module_file(root: Path, name: str) -> Path | None:
    """The source of jaxsym module ``name`` under ``root`` (a module or a package's
    ``__init__``), or None (not a jaxsym module, or an imported name that is not a module)."""
    parts = name.split(".")
    if parts[0] != "jaxsym":
        return None
    path = root.joinpath(*parts[1:])
    if path.with_suffix(".py").is_file() and len(parts) > 1:
        return path.with_suffix(".py")
    return path / "__init__.py" if (path / "__init__.py").is_file() else None


def _imports(name: str, path: Path, everywhere: bool = True) -> list[str]:
    """Every module name an import statement of ``path`` (module ``name``) may load:
    ``import a.b``, ``from a import b`` (a and a.b), relative imports resolved; ``everywhere``
    False: the module-level statements only."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in (ast.walk(tree) if everywhere else tree.body):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found += [base] + [f"{base}.{alias.name}" for alias in node.names]
    return found


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
