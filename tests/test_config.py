"""Config ranges (thresholds and knobs against what they are compared with), the [report]
section (stored, not part of a run's identity) and the registry of bundled experiments."""

import json

import pytest

from jaxsym import api
from jaxsym.engine import store
from jaxsym.study import config, experiments

BASE = (config.BUNDLED_DIR / "example.toml").read_text()


def override(**values):
    return config.apply_overrides(config.parse_study(BASE), values)


@pytest.mark.parametrize("value,message", [
    (7.0, "config key 'thresholds.diversity': must be in (0, 1) (it is compared with s2/s1, "
          "which lies in [0, 1]), got 7.0"),
    (1.0, "config key 'thresholds.diversity': must be in (0, 1)"),
    (0.0, "config key 'thresholds.diversity': must be in (0, 1)"),
    (-0.1, "config key 'thresholds.diversity': must be in (0, 1)"),
])
def test_diversity_threshold_lies_in_the_range_of_s2_over_s1(value, message):
    with pytest.raises(config.ConfigError) as error:
        override(**{"thresholds.diversity": value})
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


@pytest.mark.parametrize("value", [0.0, -1e-3])
def test_loss_threshold_is_positive(value):
    with pytest.raises(config.ConfigError, match=r"config key 'thresholds.loss': must be > 0 "
                                                 r"\(it is compared with the training loss"):
        override(**{"thresholds.loss": value})


def test_valid_thresholds_and_a_zero_learning_rate_control_are_accepted():
    study = override(**{"thresholds.diversity": 0.5, "thresholds.loss": 1e-12,
                        "train.learning_rate": 0.0})
    assert study.get("thresholds.diversity") == 0.5 and study.get("train.learning_rate") == 0.0
    assert dict(override(**{"grid.learning_rate": [0.0, 0.1]}).grid)["learning_rate"] == (0.0,
                                                                                         0.1)
    for key in ("train.learning_rate", "init.sigma_b", "init.W_std", "init.eps", "train.noise"):
        with pytest.raises(config.ConfigError, match=f"config key '{key}': must be >= 0"):
            override(**{key: -0.5})


def test_report_section_default_choices_and_unknown_key():
    assert config.parse_study(BASE.replace('section = "generic"', "")).get(
        "report.section") == "generic"
    with pytest.raises(config.ConfigError) as error:
        override(**{"report.section": "bias-only"})
    assert str(error.value) == ("config key 'report.section': unknown value 'bias-only'; "
                                f"allowed: {', '.join(experiments.SECTION_KINDS)}")
    with pytest.raises(config.ConfigError, match="config key 'report.title': unknown key; "
                                                 "allowed: section"):
        override(**{"report.title": "x"})


def test_report_section_is_not_part_of_the_identity():
    study = config.parse_study(BASE)
    shown = override(**{"report.section": "bias_only"})
    assert store.study_identity(study) == store.study_identity(shown)
    assert "report" not in json.loads(store.study_identity(study))["sections"]
    assert store.study_identity(override(**{"train.steps": 7})) != store.study_identity(study)


def test_study_from_dataset_round_trips_preset_and_overrides():
    import xarray as xr

    study = config.apply_overrides(
        config.load_study("saddle_slope", preset="quick"),
        {"model.width": 4, "report.section": "width_scaling"})
    ds = xr.Dataset(attrs={"config": study.text, "name": study.name, "preset": study.preset,
                           "overrides": json.dumps(dict(study.overrides))})
    again = config.Study.from_dataset(ds)
    assert store.study_identity(again) == store.study_identity(study)
    assert again.get("report.section") == "width_scaling" and again.preset == "quick"


EXPECTED_KINDS = {"bias_only_regression": "bias_only", "bias_only_classification": "bias_only",
                  "bias_only_mnist1d": "bias_only", "predict": "predict",
                  "predict_circles": "predict", "classify": "classify",
                  "zero_init": "zero_init", "staircase": "staircase", "escape": "escape",
                  "noise_dose": "noise_dose", "saddle_slope": "saddle_slope",
                  "phase_diagram": "phase_diagram", "example": "generic",
                  "weight_decay": "weight_decay", "minibatch_noise": "stochastic",
                  "label_noise": "stochastic", "hardware_noise": "hardware_noise",
                  "depth": "depth", "plateau": "plateau",
                  **{f"calibrate_{t}": "calibrate" for t in ("digits", "mnist1d", "spirals",
                                                             "teacher")}}


def test_every_bundled_config_names_its_report_section():
    assert sorted(EXPECTED_KINDS) == config.bundled_names()
    for name, kind in EXPECTED_KINDS.items():
        study = config.load_study(name)
        assert "[report]" in study.text and study.get("report.section") == kind, name


def test_registry_run_names_and_width_scaling_sections():
    """Run directory names are what they were before the [report] section existed (the
    report.section override is not part of the name), so existing runs resume."""
    runs = api.experiment_studies("large")
    names = [name for _, name in runs]
    width = [(name, study.get("report.section")) for study, name in runs
             if name.startswith("saddle_slope")]
    assert width == [("saddle_slope-large", "saddle_slope"),
                     ("saddle_slope-2-0.025-6000-large", "width_scaling"),
                     ("saddle_slope-4-0.05-6000-large", "width_scaling"),
                     ("saddle_slope-16-0.2-6000-large", "width_scaling"),
                     ("saddle_slope-32-0.2-8000-large", "width_scaling")]
    assert "escape-float64-large" in names and "classify-teacher_student-mse-large" in names
    assert [name for _, name in api.experiment_studies("quick")][:2] == [
        "bias_only_regression-quick", "bias_only_classification-quick"]
    calibrate = [name for name in names if name.startswith("calibrate_")]
    # 4 tasks x 3 optimizers x (constant W, random-W baselines), + 4 tasks x (sgd, Adam) x
    # (W = 0, unit groups, dropout), + 2 other losses x (sgd, Adam) x (constant W, baselines)
    assert len(calibrate) == 24 + 24 + 8
    assert "calibrate_digits-sgd-0.03+0.1+0.3+1.0-mse-large" in names
    assert "calibrate_digits-adam-0.001+0.003+0.01+0.03-large" in names
    assert "calibrate_digits-adam-0.001+0.003+0.01+0.03-zero-1.0-large" in names
    assert "weight_decay-large" in names
    assert "minibatch_noise-large" in names and "label_noise-large" in names
    assert "minibatch_noise-0.001-0.2-large" in names and "label_noise-0.05-0.0-large" in names
    assert [name for name in names if name.startswith("hardware_noise")] == [
        "hardware_noise-float32-large", "hardware_noise-bfloat16-large",
        "hardware_noise-float64-large"]
    assert [name for name in names if name.startswith("depth")] == [
        "depth-2-large", "depth-3-large", "depth-4-large", "depth-6-large", "depth-8-large"]
    assert [name for name in names if name.startswith("plateau")] == [
        "plateau-2-large", "plateau-3-large", "plateau-4-large"]
    assert len(names) == len(set(names)) == 46 + len(calibrate)
    with pytest.raises(ValueError, match="unknown preset 'huge'; allowed: quick, full, large"):
        api.experiment_studies("huge")


def test_registry_imports_only_the_standard_library():
    import subprocess
    import sys

    code = ("import sys; import jaxsym.study.experiments; "
            "assert not {'jax', 'numpy'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_groups_is_a_positive_integer_knob():
    study = config.parse_study('[init]\nweight_mode = "grouped"\n[grid]\ngroups = [1, 2, 4]\n')
    assert dict(study.grid)["groups"] == (1, 2, 4)
    for bad in ('[init]\ngroups = 0\n', '[grid]\ngroups = [1, 2.5]\n', '[init]\ngroups = true\n'):
        with pytest.raises(config.ConfigError, match="groups"):
            config.parse_study(bad)
