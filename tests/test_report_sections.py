"""The report as a renderer of stored results: sections picked by the stored section kind (never
by a study's name), one registry, theory predictions cached next to results.nc, and a renderer
that needs no JAX."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from jaxsym import api, reporting
from jaxsym.analysis import predictions, sections
from jaxsym.study import experiments

ROOT = Path(__file__).resolve().parents[1]

USER_GRID = """
name = "escape"
[task]
name = "teacher_student"
dim = 2
teacher_width = 2
n_train = 32
n_test = 8
[model]
width = 3
[train]
steps = 30
[grid]
sigma_b = [0.0, 1e-2]
[seeds]
count = 2
"""


def test_every_section_kind_has_one_analysis_and_one_renderer():
    kinds = set(experiments.SECTION_KINDS)
    assert set(sections.ANALYSES) == kinds
    assert set(reporting.RENDERERS) == kinds
    assert sorted(sections.REPORT_ORDER) == sorted(kinds)
    assert set(sections.ALSO_READS) <= kinds


def test_a_user_study_named_like_a_bundled_one_gets_the_generic_section(tmp_path):
    """Dispatch is on the stored ``[report] section`` key: a study named "escape" without one
    is reported generically, not with the dtype-floor section."""
    api.run(USER_GRID, out=tmp_path / "run")
    text = reporting.write_report([tmp_path / "run"], tmp_path / "fig").read_text()
    assert "## escape" in text and "dtype floors" not in text
    assert (tmp_path / "fig" / "overview_escape.png").exists()


def test_an_unknown_stored_section_kind_is_one_line_naming_the_known_ones():
    import xarray as xr

    ds = xr.Dataset(attrs={"name": "x", "report_section": "histogram"})
    with pytest.raises(ValueError) as error:
        sections.section_kind(ds)
    message = str(error.value)
    assert "\n" not in message and "'histogram'" in message
    assert all(kind in message for kind in experiments.SECTION_KINDS)


def test_predictions_round_trip_exactly():
    from jaxsym.theory.classify import CellPrediction
    from jaxsym.theory.escape import EscapePrediction, PooledPrediction

    draw = EscapePrediction((3,), 1e-2, np.array([[np.inf, -1.5, np.nan, 1 / 3]]),
                            np.array([0.25, 0.125, 1e-300, 7.0]),
                            np.full((1, 4), np.inf), True, np.zeros((2, 4)))
    value = {((("activation", "tanh"),), (("learning_rate", 0.1),)): PooledPrediction((draw,)),
             ((("activation", "relu"),), 0, 1e-8): CellPrediction(0.5, "kink", np.inf, None, 0.0)}
    back = predictions.decode(json.loads(json.dumps(predictions.encode(value))))
    (key, pooled), (key2, cell) = back.items()
    assert key == next(iter(value)) and key2 == list(value)[1]
    got = pooled.draws[0]
    assert got.widths == (3,) and got.threshold == 1e-2 and got.norm_mode is True
    for name in ("log_amplitude", "loss", "log_norm_amplitude", "log_kink_margin"):
        np.testing.assert_array_equal(getattr(got, name), getattr(draw, name))
        assert getattr(got, name).dtype == getattr(draw, name).dtype
    assert cell == list(value.values())[1]


def test_predictions_are_computed_once_and_cached_next_to_the_results(tmp_path, monkeypatch):
    from jaxsym.study import config

    calls = []

    def compute(study):
        calls.append(study.name)
        return {"a": np.arange(3.0)}

    study = config.parse_study(USER_GRID)
    first = predictions.cached("kind", study, tmp_path, compute)
    second = predictions.cached("kind", study, tmp_path, compute)
    assert calls == ["escape"] and (tmp_path / "predictions" / "kind.json").exists()
    np.testing.assert_array_equal(first["a"], second["a"])
    # another study (a changed setting) is not served the stale prediction
    other = config.apply_overrides(study, {"train.steps": 31})
    predictions.cached("kind", other, tmp_path, compute)
    assert calls == ["escape", "escape"]
    # a read-only run directory: computed, not kept, no error
    assert predictions.cached("kind", study, None, compute)["a"].size == 3


def test_the_prediction_digest_covers_the_theory_and_its_imports_only(tmp_path):
    """Registering an experiment, or editing the engine's bookkeeping (records, observers, the
    runner), keeps every cached prediction; editing a theory source or a module the theory
    imports (the training step) does not (a copy of the package, one file appended to at a
    time)."""
    import importlib.util
    import shutil

    import jaxsym

    root = Path(jaxsym.__file__).parent
    copy = tmp_path / "jaxsym"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("__pycache__"))

    def digest():
        spec = importlib.util.spec_from_file_location("_p", copy / "analysis" / "predictions.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.code_digest()

    before = digest()
    assert before == predictions.code_digest()
    sources = {p.relative_to(root).as_posix() for p in predictions.prediction_sources(root)}
    assert {"theory/depth.py", "core/train.py", "core/dense.py", "study/plan.py"} <= sources
    assert not sources & {"core/observers.py", "core/records.py", "engine/runner.py",
                          "study/experiments.py", "reporting/answer.py"}
    for kept in ("study/experiments.py", "core/observers.py", "core/records.py",
                 "engine/runner.py"):
        with open(copy / kept, "a") as f:
            f.write("\n# an edit no prediction depends on\n")
        assert digest() == before, kept
    for changed in ("theory/depth.py", "core/train.py"):
        shutil.copy(root / changed, copy / changed)
        assert digest() == before
        with open(copy / changed, "a") as f:
            f.write("\n# an edit a prediction depends on\n")
        assert digest() != before, changed
        shutil.copy(root / changed, copy / changed)
    # a new import pulls its module into the closure
    with open(copy / "theory" / "escape.py", "a") as f:
        f.write("\n\ndef _uses_the_engine():\n    from jaxsym.core import observers\n")
    changed = digest()
    with open(copy / "core" / "observers.py", "a") as f:
        f.write("\n# now a prediction may depend on it\n")
    assert digest() != changed


def test_the_renderer_imports_neither_jax_nor_the_theory(tmp_path):
    """A report from a small stored result, rendered in a process where importing jax fails."""
    import xarray as xr

    run = tmp_path / "run"
    run.mkdir()
    rng = np.random.default_rng(0)
    shape = (2, 4)
    study = {"sections": {"task": {"name": "xor", "seed": 0, "draws": 1},
                          "model": {"depth": 2, "width": 4, "activation": "tanh"},
                          "train": {"loss": "bce", "optimizer": "sgd", "learning_rate": 0.1,
                                    "steps": 50, "batch_size": 0, "dtype": "float32",
                                    "noise": 0.0},
                          "init": {"weight_mode": "constant", "weight_value": 1.0,
                                   "fan_in_scaled": True, "W_std": 1.0, "sigma_b": 0.0,
                                   "eps": 0.0},
                          "seeds": {"count": 4, "root": 0},
                          "thresholds": {"diversity": 1e-2, "loss": 1e-2}},
             "grid": [["sigma_b", [0.0, 0.1]]]}
    ds = xr.Dataset(
        {"broken": (("sigma_b", "seed"), rng.random(shape) < 0.5),
         "converged": (("sigma_b", "seed"), rng.random(shape) < 0.5),
         "time_to_break": (("sigma_b", "seed"), rng.integers(0, 50, shape)),
         "time_to_converge": (("sigma_b", "seed"), rng.integers(0, 50, shape))},
        coords={"sigma_b": [0.0, 0.1], "seed": np.arange(4)},
        attrs={"name": "stored", "study": json.dumps(study), "config": "# a stored study\n",
               "steps": 50, "layer_sizes": [2, 4, 1], "n_devices": 1, "backend": "cpu",
               "strategy": "map", "jaxsym_version": "0", "git_sha": "0" * 40,
               "jax_version": "0"})
    ds.to_netcdf(run / "results.nc", engine="netcdf4")
    code = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "jax" or name.startswith(("jax.", "jaxlib")):
                    raise ImportError("jax is blocked in this test")
        sys.meta_path.insert(0, Block())
        from jaxsym import reporting
        path = reporting.write_report([{str(run)!r}], {str(tmp_path / 'fig')!r})
        bad = [m for m in sys.modules if m == "jax" or m.startswith(("jax.", "jaxsym.theory"))]
        assert not bad, bad
        print(path)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "fig" / "REPORT.md").read_text()
    assert "## stored" in text and "*Study:* a stored study" in text
    assert (tmp_path / "fig" / "overview_stored.png").exists()
