"""Run directories: atomic chunk files, resume, and the merged ``results.nc``.

Layout of a run directory::

    study.json      the resolved study (sections + grid + seeds); identifies the run
    config.toml     the config text it came from (provenance)
    chunks/         one ``.npz`` per finished chunk: ``net`` (flat network ids) + records +
                    ``_sha256`` (digest of every array's name, dtype, shape and bytes)
    results.nc      the merged xarray.Dataset (written last)
    results.nc.sha256  the SHA-256 of results.nc's bytes
    .lock, .lock.owner  the run-directory lock (held by the one process that trains and merges)
                    and who holds it

Every file is written to a unique temporary name in the same directory and then
``os.replace``-d, so an interrupted run never leaves a half-written chunk; running again skips the
networks whose chunks exist. A chunk that cannot be read or whose digest does not match (truncated,
emptied, bit-flipped) is reported by name, deleted and its networks re-trained; a results.nc whose
digest does not match is rebuilt from the chunks. The flat network id of (grid point g, seed s) is
``g * n_seeds + s``.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile
import zipfile
from pathlib import Path
from zlib import error as zlib_error

import numpy as np

__all__ = ["RunDirError", "RunLockedError", "CorruptFileError", "StaleChunkError",
           "RunWriteError", "PRESENTATION_SECTIONS", "study_identity", "holds_study",
           "finished_networks",
           "prepare_run_dir", "write_chunk", "read_chunk", "read_chunks", "scan_chunks",
           "write_atomic", "file_digest", "write_digest", "digest_ok", "lock_run_dir", "load"]

#: files of the run-directory lock (not part of the run's contents)
LOCK_FILES = (".lock", ".lock.owner")


class RunDirError(ValueError):
    """The run directory holds a different study (use --force or another --out)."""


class RunLockedError(RunDirError):
    """Another process holds the run directory's lock."""


class CorruptFileError(RunDirError):
    """A run file cannot be read or does not match its stored SHA-256 digest.

    Attributes:
      path: the file (None when unknown).
      problem: what is wrong with it, without the advice (``str(error)`` may add some).
    """

    def __init__(self, message: str, path=None, problem: str | None = None):
        super().__init__(message)
        self.path = path
        self.problem = message if problem is None else problem


class StaleChunkError(CorruptFileError):
    """A chunk written by another jaxsym version: it lacks some of the records this version
    writes (``missing``, their names); its networks are re-trained."""

    def __init__(self, path, missing):
        self.missing = tuple(missing)
        super().__init__(f"chunk '{path}' was written by another jaxsym version "
                         f"({self.records_text})", path=path)

    @property
    def records_text(self) -> str:
        """``"no 'a', 'b' record"``: what the chunk lacks, in words."""
        return f"no {', '.join(repr(m) for m in self.missing)} record"


class RunWriteError(OSError):
    """Writing a run file failed (e.g. a full disk); ``str(error)`` names the file, the reason
    and the free space left.

    Attributes:
      path: the file that could not be written.
      free_bytes: free space left on its filesystem (bytes).
    """

    def __init__(self, message: str, path, free_bytes: int):
        super().__init__(message)
        self.path, self.free_bytes = path, free_bytes


#: config sections that do not change any result (how a run is shown): not part of a run's
#: identity, so an existing run directory resumes after they change
PRESENTATION_SECTIONS = ("report",)


#: ``(section, key, value)`` of settings added after run directories existed whose value
#: here means "off", compiled out, so that results are bit for bit those of the code before
#: the setting existed: left out of a run's identity at that value, so older run directories
#: still resume (and a report re-renders from them) under the newer code
NEUTRAL_SETTINGS = (("train", "weight_decay", 0.0), ("init", "groups", 1),
                    ("train", "dropout", 0.0), ("train", "label_noise", 0.0),
                    ("train", "kernel", "exact"))


def study_identity(study) -> str:
    """Canonical JSON of everything that determines the results (every section except
    :data:`PRESENTATION_SECTIONS`, and the grid; the settings of :data:`NEUTRAL_SETTINGS` at
    their neutral value are left out)."""
    sections = {k: dict(v) for k, v in study.sections.items() if k not in PRESENTATION_SECTIONS}
    for section, key, neutral in NEUTRAL_SETTINGS:
        if section in sections and sections[section].get(key, None) == neutral:
            del sections[section][key]
    return json.dumps({"sections": sections, "grid": [[a, list(v)] for a, v in study.grid]},
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
        for name in ("results.nc", "results.nc.sha256", "study.json"):
            if (out / name).exists():
                (out / name).unlink()
    elif out.exists() and any(p.name not in LOCK_FILES for p in out.iterdir()) and not force:
        raise RunDirError(f"'{out}' exists and is not a jaxsym run directory; "
                          "use --force or another --out")
    (out / "chunks").mkdir(parents=True, exist_ok=True)
    write_atomic(out / "config.toml", lambda f: f.write(study.text.encode()))
    write_atomic(marker, lambda f: f.write(identity.encode()))
    return False


def _array_digest(arrays: dict) -> np.ndarray:
    """SHA-256 of every array's name, dtype, shape and bytes (sorted by name), as uint8[32]."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return np.frombuffer(digest.digest(), np.uint8)


def write_chunk(out: Path, group: int, nets: np.ndarray, records: dict) -> Path:
    """Write one finished chunk atomically, with the digest of its arrays; returns its path."""
    path = Path(out) / "chunks" / f"g{group:03d}_{int(nets[0]):09d}_{len(nets)}.npz"
    arrays = {"net": np.asarray(nets), **{k: np.asarray(v) for k, v in records.items()}}
    write_atomic(path, lambda f: np.savez(f, _sha256=_array_digest(arrays), **arrays))
    return path


def read_chunk(path: Path, required=()) -> dict:
    """One chunk's arrays (``net`` + records), verified against its stored digest.

    Raises :class:`CorruptFileError` naming the file when it cannot be read (truncated, empty,
    not a zip) or its digest does not match (a flipped bit). Chunks written before digests were
    stored are accepted when their zip CRC-32 checks pass."""
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib_error) as error:
        raise CorruptFileError(f"chunk '{path}' cannot be read ({type(error).__name__}: "
                               f"{str(error).splitlines()[0] if str(error) else 'empty'})",
                               path=path) from None
    stored = arrays.pop("_sha256", None)
    if "net" not in arrays:
        raise CorruptFileError(f"chunk '{path}' has no 'net' array", path=path)
    if stored is not None and not np.array_equal(stored, _array_digest(arrays)):
        raise CorruptFileError(f"chunk '{path}' does not match its SHA-256 digest", path=path)
    missing = [name for name in required if name not in arrays]
    if missing:
        raise StaleChunkError(path, missing)
    return arrays


def scan_chunks(out: Path, required=()) -> tuple[list[dict], list[CorruptFileError]]:
    """Every chunk of ``out``: ``(verified chunks, the errors of the corrupt ones)``, each
    error's ``path`` the chunk; a chunk without one of the ``required`` records (from another
    jaxsym version) counts as corrupt (a :class:`StaleChunkError`)."""
    good, bad = [], []
    for path in sorted((Path(out) / "chunks").glob("g*.npz")):
        try:
            good.append(read_chunk(path, required))
        except CorruptFileError as error:
            bad.append(error)
    return good, bad


def holds_study(out: Path, study) -> bool:
    """True when ``out`` is a prepared run directory of exactly ``study``."""
    marker = Path(out) / "study.json"
    try:
        return marker.read_text() == study_identity(study) and (Path(out) / "chunks").is_dir()
    except OSError:
        return False


def finished_networks(out: Path, required=()) -> set[int]:
    """Flat ids of every network with a verified chunk (corrupt chunks count as not done)."""
    done = set()
    for chunk in scan_chunks(out, required)[0]:
        done.update(int(n) for n in chunk["net"])
    return done


def read_chunks(out: Path, required=()) -> list[dict]:
    """Every chunk of a run directory as dicts of arrays (``net`` + records); raises
    :class:`CorruptFileError` naming the first corrupt one."""
    good, bad = scan_chunks(out, required)
    if bad:
        raise bad[0]
    return good


def file_digest(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _digest_path(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + ".sha256")


def write_digest(path: Path, digest: str | None = None) -> None:
    """Write ``PATH.sha256`` (``sha256sum`` format) for ``path``."""
    digest = digest or file_digest(path)
    write_atomic(_digest_path(path), lambda f: f.write(f"{digest}  {Path(path).name}\n".encode()))


def digest_ok(path: Path) -> bool:
    """True when ``path`` exists and matches ``PATH.sha256`` (files from before digests were
    stored, with no ``.sha256``, count as matching)."""
    path = Path(path)
    if not path.exists():
        return False
    try:
        stored = _digest_path(path).read_text().split()[0]
    except FileNotFoundError:
        return True
    except (OSError, IndexError, UnicodeDecodeError):
        return False
    return stored == file_digest(path)


def _owner_text() -> str:
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return (f"process {os.getpid()} on {socket.gethostname()} since {started} "
            f"({' '.join(sys.argv) or 'python'})")


@contextlib.contextmanager
def lock_run_dir(out: Path, wait: bool = False):
    """Hold the lock of run directory ``out`` (created if needed) for the ``with`` body.

    Another holder (any process, this one included) makes it raise :class:`RunLockedError`
    naming who holds it, or, with ``wait``, block until it is released. The lock is an OS file
    lock (``filelock``): it is released when the holder exits, even on ``kill -9``."""
    import filelock

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(out / LOCK_FILES[0]), is_singleton=False)
    try:
        lock.acquire(timeout=-1 if wait else 0)
    except filelock.Timeout:
        try:
            owner = (out / LOCK_FILES[1]).read_text().strip() or "another process"
        except OSError:
            owner = "another process"
        raise RunLockedError(f"run directory '{out}' is in use by {owner}; wait for it with "
                             "--wait or use another --out") from None
    try:
        write_atomic(out / LOCK_FILES[1], lambda f: f.write(_owner_text().encode()))
        yield
    finally:
        with contextlib.suppress(OSError):
            (out / LOCK_FILES[1]).unlink()
        lock.release()


def load(run_dir):
    """The merged results of a finished run directory, as an ``xarray.Dataset``.

    Raises FileNotFoundError when there is no results.nc, :class:`CorruptFileError` when it does
    not match its digest or cannot be read (re-running ``jaxsym run`` rebuilds it)."""
    import xarray as xr

    path = Path(run_dir) / "results.nc"
    if not path.exists():
        raise FileNotFoundError(f"no results.nc in '{run_dir}': run `jaxsym run` first")
    hint = "re-run `jaxsym run` with its config.toml and --out to rebuild it from the chunks"
    if not digest_ok(path):
        problem = f"'{path}' does not match its SHA-256 digest"
        raise CorruptFileError(f"{problem}; {hint}", path=path, problem=problem)
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            return ds.load()
    except (OSError, ValueError, RuntimeError) as error:
        problem = f"'{path}' cannot be read ({type(error).__name__})"
        raise CorruptFileError(f"{problem}; {hint}", path=path, problem=problem) from None
