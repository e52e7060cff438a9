"""Corrupt and concurrent run directories: checksums, automatic recovery, the run lock.

* every chunk carries the SHA-256 of its arrays and results.nc has ``results.nc.sha256``;
  a truncated, emptied or bit-flipped chunk is named, deleted and re-trained, a corrupt
  results.nc is rebuilt from the chunks, and the recovered run equals an uninterrupted one;
* one process at a time holds a run directory (an OS file lock): a second ``jaxsym run`` on the
  same --out is refused naming the holder (exit 2, nothing written), or waits with ``--wait``.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from jaxsym.study import config
from jaxsym.engine import store
from jaxsym.engine.run import run_study

#: one xdist worker runs this module, so its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group("test_recovery")

ROOT = Path(__file__).parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))
TINY = (ROOT / "experiments" / "example.toml").read_text().replace("steps = 2000", "steps = 40")


def tiny_study():
    return config.apply_overrides(config.parse_study(TINY, name="example"), {"seeds.count": 3})


def data_equal(a: xr.Dataset, b: xr.Dataset) -> None:
    """Every variable and coordinate bitwise equal (provenance attributes may differ)."""
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "run"
    return run_study(tiny_study(), out, chunk_size=4, progress=False), out


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _flip_bit(path: Path) -> None:
    """Flip one bit inside a stored (uncompressed) array: the zip stays readable."""
    data = bytearray(path.read_bytes())
    with np.load(path) as npz:
        spread = npz["spread"].tobytes()
    where = bytes(data).find(spread[:64])
    assert where > 0
    data[where + 40] ^= 0x04
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _empty, _flip_bit])
def test_corrupt_chunk_is_named_and_retrained(tmp_path, reference, damage):
    expected, source = reference
    out = tmp_path / "run"
    import shutil

    shutil.copytree(source, out)
    victim = sorted((out / "chunks").glob("g*.npz"))[1]
    damage(victim)
    with pytest.raises(store.CorruptFileError, match=victim.name):
        store.read_chunks(out)
    (out / "results.nc").unlink()  # the chunk broke before the merge
    notes = []
    dataset = run_study(tiny_study(), out, chunk_size=4, progress=False, log=notes.append)
    assert len(notes) == 1 and victim.name in notes[0] and "re-trained" in notes[0]
    assert dataset.attrs["networks_trained_now"] == int(victim.stem.rsplit("_", 1)[1])
    data_equal(dataset, expected)
    assert not store.scan_chunks(out)[1]


def test_corrupt_results_is_rebuilt_from_the_chunks(tmp_path, reference):
    expected, source = reference
    out = tmp_path / "run"
    import shutil

    shutil.copytree(source, out)
    assert store.digest_ok(out / "results.nc")
    _truncate(out / "results.nc")
    with pytest.raises(store.CorruptFileError, match="results.nc"):
        store.load(out)
    notes = []
    dataset = run_study(tiny_study(), out, progress=False, log=notes.append)
    assert len(notes) == 1 and "rebuilding it from the chunks" in notes[0]
    assert dataset.attrs["networks_trained_now"] == 0
    data_equal(dataset, expected)
    data_equal(store.load(out), expected)


def test_results_file_has_the_umask_mode_and_a_digest(reference):
    _, out = reference
    mask = os.umask(0)
    os.umask(mask)
    assert (out / "results.nc").stat().st_mode & 0o777 == 0o666 & ~mask
    digest = (out / "results.nc.sha256").read_text().split()
    assert digest == [store.file_digest(out / "results.nc"), "results.nc"]
    assert not list(out.glob(".*tmp"))  # no temp file left behind


def _cli(out, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "jaxsym", "run", str(ROOT / "experiments" / "example.toml"),
         "--out", str(out), "--steps", "40", "--seeds", "3", "--no-progress", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def test_locked_run_dir_is_refused_naming_the_holder_or_waited_for(tmp_path):
    """The test process holds the lock; a real `jaxsym run` process is refused (exit 2, one
    line naming this process, nothing written); with --wait it blocks until the lock is
    released, then trains."""
    out = tmp_path / "run"
    with store.lock_run_dir(out):
        refused = _cli(out)
        _, err = refused.communicate(timeout=120)
        assert refused.returncode == 2, err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert f"is in use by process {os.getpid()}" in err and "--wait" in err
        assert sorted(p.name for p in out.iterdir()) == [".lock", ".lock.owner"]
        waiting = _cli(out, "--wait")
        time.sleep(3.0)
        assert waiting.poll() is None  # still blocked on the lock
        assert not (out / "study.json").exists()
    out_text, err = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, err
    assert "trained 18" in out_text
    assert not (out / ".lock.owner").exists()


def test_two_concurrent_runs_do_the_work_once(tmp_path):
    """Two `jaxsym run --wait` on one --out, started together: both succeed, the work is done
    once (the second finds every chunk done) and both see the same results."""
    out = tmp_path / "run"
    first, second = _cli(out, "--wait"), _cli(out, "--wait")
    texts = [p.communicate(timeout=300) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], texts
    trained = sorted("trained 18" in text for text, _ in texts)
    assert trained == [False, True], texts
    assert any("trained 0" in text for text, _ in texts)
    assert store.digest_ok(out / "results.nc")


def test_chunk_from_another_version_is_retrained(tmp_path, reference):
    """A chunk without a record this version writes (e.g. from before diversity_at_break) is
    named and re-trained, never merged into a traceback."""
    expected, source = reference
    out = tmp_path / "run"
    import shutil

    shutil.copytree(source, out)
    victim = sorted((out / "chunks").glob("g*.npz"))[0]
    arrays = store.read_chunk(victim)
    del arrays["diversity_at_break"]
    victim.unlink()
    store.write_chunk(out, int(victim.name[1:4]), arrays.pop("net"), arrays)
    with pytest.raises(store.StaleChunkError) as error:
        store.read_chunk(victim, ("net", "diversity_at_break"))
    assert (error.value.path, error.value.missing) == (victim, ("diversity_at_break",))
    assert isinstance(error.value, store.CorruptFileError)
    notes = []
    dataset = run_study(tiny_study(), out, chunk_size=4, progress=False, log=notes.append)
    assert notes == [f"1 chunk(s) in '{out}' were written by another jaxsym version (e.g. "
                     f"'{victim.name}': no 'diversity_at_break' record): deleted; their "
                     "networks are re-trained"]
    data_equal(dataset, expected)


def test_a_failed_results_write_is_typed_with_the_free_space(tmp_path, reference, monkeypatch):
    """results.write raises store.RunWriteError (an OSError) carrying the path and the free
    space: the command line branches on the type, not on the message."""
    from jaxsym.engine import results

    expected, _ = reference

    def to_netcdf(self, *args, **kwargs):
        raise RuntimeError("NetCDF: HDF error")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", to_netcdf)
    with pytest.raises(store.RunWriteError) as error:
        results.write(expected, tmp_path / "results.nc")
    assert isinstance(error.value, OSError) and error.value.free_bytes > 0
    assert error.value.path == tmp_path / "results.nc" and "MiB free" in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_a_new_report_section_resumes_and_is_stored(tmp_path, reference):
    """[report] section is not part of a run's identity: a finished run directory resumes
    (nothing re-trained, numbers untouched) and results.nc then names the new section."""
    import shutil

    expected, source = reference
    out = tmp_path / "run"
    shutil.copytree(source, out)
    assert expected.attrs["report_section"] == "generic"
    shown = config.apply_overrides(tiny_study(), {"report.section": "bias_only"})
    dataset = run_study(shown, out, chunk_size=4, progress=False)
    assert dataset.attrs["networks_trained_now"] == 0
    assert store.load(out).attrs["report_section"] == "bias_only"
    assert config.Study.from_dataset(store.load(out)).get("report.section") == "bias_only"
    data_equal(store.load(out), expected)
    assert store.load(out).attrs["git_sha"] == expected.attrs["git_sha"]


def test_a_changed_config_comment_resumes_and_is_stored(tmp_path, reference):
    """A config's comments (the report's "Study:" line) are not part of a run's identity: a
    finished run directory resumes with nothing re-trained, and results.nc then holds the new
    text, so the report shows the comment as the config says it now."""
    import shutil

    expected, source = reference
    out = tmp_path / "run"
    shutil.copytree(source, out)
    text = "# a corrected description of the experiment\n" + TINY
    shown = config.apply_overrides(config.parse_study(text, name="example"), {"seeds.count": 3})
    assert store.study_identity(shown) == store.study_identity(tiny_study())
    dataset = run_study(shown, out, chunk_size=4, progress=False)
    assert dataset.attrs["networks_trained_now"] == 0
    assert store.load(out).attrs["config"].startswith("# a corrected description")
    assert expected.attrs["config"] == TINY
    data_equal(store.load(out), expected)
    assert store.load(out).attrs["git_sha"] == expected.attrs["git_sha"]
