"""Run directories: atomic chunk files, resume, and the merged ``results.nc``.

Layout of a run directory::

    study.json      the resolved study (sections + grid + seeds); identifies the run
    config.toml     the config text it came from (provenance)
    chunks/         one ``.npz`` per finished chunk: ``net`` (flat network ids) + records
    results.nc      the merged xarray.Dataset (written last)

Every file is written to a temporary name in the same directory and then ``os.replace``-d, so an
interrupted run never leaves a half-written chunk; running again skips the networks whose chunks
exist. The flat network id of (grid point g, seed s) is ``g * n_seeds + s``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["RunDirError", "study_identity", "prepare_run_dir", "write_chunk", "read_chunks",
           "write_atomic", "load"]


class RunDirError(ValueError):
    """The run directory holds a different study (use --force or another --out)."""


def study_identity(study) -> str:
    """Canonical JSON of everything that determines the results."""
    return json.dumps({"sections": study.sections, "grid": [[a, list(v)] for a, v in study.grid]},
                      sort_keys=True, indent=1)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, write) -> None:
    """Call ``write(file_object)`` on a temp file next to ``path``, then rename it to ``path``.

    The file gets the mode a plain ``open`` would give (``0o666`` minus the umask), not the
    temp file's private ``0o600``: on a shared cluster filesystem the group can read the runs.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def prepare_run_dir(out: Path, study, force: bool = False) -> bool:
    """Create (or re-open) a run directory for ``study``.

    Returns True when the directory already held this study (a resume). Raises
    :class:`RunDirError` when it holds a different one, unless ``force`` (then it is wiped).
    """
    out = Path(out)
    identity = study_identity(study)
    marker = out / "study.json"
    if marker.exists():
        if marker.read_text() == identity:
            return True
        if not force:
            raise RunDirError(f"run directory '{out}' holds a different study; "
                              "use --force to overwrite it or --out for a new directory")
        shutil.rmtree(out / "chunks", ignore_errors=True)
        for name in ("results.nc", "study.json"):
            if (out / name).exists():
                (out / name).unlink()
    elif out.exists() and any(out.iterdir()) and not force:
        raise RunDirError(f"'{out}' exists and is not a jaxsym run directory; "
                          "use --force or another --out")
    (out / "chunks").mkdir(parents=True, exist_ok=True)
    write_atomic(out / "config.toml", lambda f: f.write(study.text.encode()))
    write_atomic(marker, lambda f: f.write(identity.encode()))
    return False


def write_chunk(out: Path, group: int, nets: np.ndarray, records: dict) -> Path:
    """Write one finished chunk atomically; returns its path."""
    path = Path(out) / "chunks" / f"g{group:03d}_{int(nets[0]):09d}_{len(nets)}.npz"
    write_atomic(path, lambda f: np.savez(f, net=nets, **records))
    return path


def holds_study(out: Path, study) -> bool:
    """True when ``out`` is a prepared run directory of exactly ``study``."""
    marker = Path(out) / "study.json"
    try:
        return marker.read_text() == study_identity(study) and (Path(out) / "chunks").is_dir()
    except OSError:
        return False


def finished_networks(out: Path) -> set[int]:
    """Flat ids of every network with a finished chunk (reads only the chunks' ``net`` arrays)."""
    done = set()
    for path in sorted((Path(out) / "chunks").glob("g*.npz")):
        with np.load(path) as data:
            done.update(int(n) for n in data["net"])
    return done


def read_chunks(out: Path) -> list[dict]:
    """Every finished chunk of a run directory as dicts of arrays (``net`` + records)."""
    chunks = []
    for path in sorted((Path(out) / "chunks").glob("g*.npz")):
        with np.load(path) as data:
            chunks.append({k: data[k] for k in data.files})
    return chunks


def load(run_dir):
    """The merged results of a finished run directory, as an ``xarray.Dataset``."""
    import xarray as xr

    path = Path(run_dir) / "results.nc"
    if not path.exists():
        raise FileNotFoundError(f"no results.nc in '{run_dir}': run `jaxsym run` first")
    with xr.open_dataset(path, engine="netcdf4") as ds:
        return ds.load()
