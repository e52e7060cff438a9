"""THE registry of the bundled experiments: what ``jaxsym study`` runs, per preset, and how
each run is shown in the report.

Contract: :data:`STUDY_EXPERIMENTS` lists ``(file stem in jaxsym/experiments/, overrides,
presets that include it)`` in run order, and :func:`run_name` names each run's directory
(:func:`jaxsym.api.experiment_studies` loads and validates them). :data:`SECTION_KINDS` are the
report section kinds a config's ``[report] section`` may name (the report dispatches on that
stored key, never on a study name). This module is data: it imports nothing but the standard
library (the config validator imports it, never the other way round).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["BUNDLED_DIR", "bundled_names", "SECTION_KINDS", "PRESETS", "STUDY_EXPERIMENTS",
           "STUDY_FIGURES", "CALIBRATE_LEARNING_RATES", "CALIBRATE_BASELINES",
           "CALIBRATE_ALTERNATIVES", "CALIBRATE_ZERO", "CALIBRATE_GROUPS", "CALIBRATE_DROPOUT",
           "CALIBRATE_LOSSES", "CALIBRATE_LOSS_TASK", "FULL_OPTIMIZERS", "DEPTHS", "PLATEAU_DEPTHS", "run_suffix",
           "run_name"]

#: the bundled experiments (package data, so an installed wheel has them too)
BUNDLED_DIR = Path(__file__).parent.parent / "experiments"


def bundled_names() -> list[str]:
    """Names of the bundled experiments (``jaxsym run NAME`` works for each)."""
    return sorted(p.stem for p in BUNDLED_DIR.glob("*.toml"))


#: the report section kinds (``[report] section``): "generic" (P(broken) and the times to
#: break and to converge at every grid point) fits any study; the others are the bundled
#: experiments' dedicated sections
SECTION_KINDS = ("generic", "bias_only", "predict", "classify", "zero_init", "staircase",
                 "escape", "noise_dose", "saddle_slope", "width_scaling", "phase_diagram",
                 "calibrate", "weight_decay", "stochastic", "hardware_noise", "depth", "plateau")

#: the presets of ``jaxsym study`` (every bundled config defines them), with what each is for
PRESETS = {"quick": "minutes on a 2-core CPU",
           "full": "the committed figures/ (>= 64 seeds on the bias-only grids, the "
                   "calibration with sgd and Adam; about 3 hours on 2 cores, run alone)",
           "large": ">= 512 seeds and every variant (a GPU or days of CPU)"}

_ALL = ("quick", "full", "large")

#: the calibration's learning-rate grid per optimizer (sgd, momentum 0.9, Adam): 4 values
#: each, a factor ~3 apart, around the usual defaults
CALIBRATE_LEARNING_RATES = {"sgd": [0.03, 0.1, 0.3, 1.0], "momentum": [0.003, 0.01, 0.03, 0.1],
                            "adam": [0.001, 0.003, 0.01, 0.03]}
#: the calibration's random-W baselines: Glorot normal (b = 0), PyTorch's nn.Linear default
#: (W and b uniform on +-1/sqrt(fan_in)), LeCun normal (Flax's default, b = 0)
CALIBRATE_BASELINES = {"grid.weight_mode": ["glorot", "torch_default", "normal"],
                       "grid.weight_value": [1.0], "grid.sigma_b": [0.0]}
#: the full and large presets' baseline runs add the other answers to "is random W the only
#: choice?": orthogonal W, constant hidden W with a random output layer or with alternating-sign
#: output weights (two unit groups), deterministic Hadamard rows (all with b = 0)
CALIBRATE_ALTERNATIVES = {**CALIBRATE_BASELINES, "grid.weight_mode": [
    "glorot", "torch_default", "normal", "orthogonal", "random_output", "signed_output",
    "hadamard"]}
#: the full and large presets' W = 0 runs (every weight zero, biases N(0, sigma_b^2) over the
#: file's sigma_b grid): the bias-only recipe with nothing else, for sgd and Adam
CALIBRATE_ZERO = {"grid.weight_mode": ["zero"], "grid.weight_value": [1.0]}
#: the full and large presets' unit-group runs: Glorot W shared by k groups of identical hidden
#: units (b = 0), k = 1 (one collapsed unit) .. 16 (the width of the narrowest calibration
#: network: there it is Glorot): how many distinct groups training needs
CALIBRATE_GROUPS = {"grid.weight_mode": ["grouped"], "grid.weight_value": [1.0],
                    "grid.sigma_b": [0.0], "grid.groups": [1, 2, 4, 8, 16]}
#: the full and large presets' dropout runs: constant hidden W (c = 1), b = 0, and
#: training-time dropout on the hidden units at rate p (tuned like a learning rate): identical
#: units that only the dropout masks make differ
CALIBRATE_DROPOUT = {"grid.weight_mode": ["constant"], "grid.weight_value": [1.0],
                     "grid.sigma_b": [0.0], "grid.dropout": [0.1, 0.25, 0.5]}
#: the loss varied at a fixed task: the full and large presets rerun this task's constant-W
#: and random-W-baseline grids with each of these losses (one-hot targets for both), every
#: init tuned again per loss, so that "depends on the loss" is not "depends on the task or the
#: step size"; its own loss (softmax_ce) is the main run
CALIBRATE_LOSS_TASK = "calibrate_digits"
CALIBRATE_LOSSES = ("mse", "bce")
#: the optimizers of the full preset's main calibration runs (momentum is in the large preset
#: only: with it the full preset took about 4.5 h on 2 cores, over the 3 h it may take)
FULL_OPTIMIZERS = ("sgd", "adam")
#: the optimizers of the W = 0, unit-group, dropout and loss runs
_EXTRA_OPTIMIZERS = ("sgd", "adam")
#: (task file, the optimizers the quick preset runs on it) of the calibration
_CALIBRATE = (("calibrate_teacher", ("sgd", "adam")), ("calibrate_spirals", ("sgd", "adam")),
              ("calibrate_digits", ("adam",)), ("calibrate_mnist1d", ()))


def _calibrate_runs():
    """The calibration's runs: per task and optimizer, constant W + random b, then the
    random-W baselines (the same file with :data:`CALIBRATE_BASELINES`; in the full and large
    presets with the alternatives too, :data:`CALIBRATE_ALTERNATIVES`); then, full and large
    only, per task for sgd and Adam, W = 0 + random b (:data:`CALIBRATE_ZERO`) and the unit
    groups (:data:`CALIBRATE_GROUPS`), then dropout on identical units
    (:data:`CALIBRATE_DROPOUT`), then the loss runs (:data:`CALIBRATE_LOSSES` on
    :data:`CALIBRATE_LOSS_TASK`), each after every earlier run (so that a study resumed from
    runs made before they existed trains only them)."""
    for name, quick in _CALIBRATE:
        for optimizer, rates in CALIBRATE_LEARNING_RATES.items():
            base = {"train.optimizer": optimizer, "grid.learning_rate": rates}
            if optimizer in quick:
                yield name, base, ("quick",)
                yield name, {**base, **CALIBRATE_BASELINES}, ("quick",)
            presets = ("full", "large") if optimizer in FULL_OPTIMIZERS else ("large",)
            yield name, base, presets
            yield name, {**base, **CALIBRATE_ALTERNATIVES}, presets
    for name, _ in _CALIBRATE:
        for optimizer in _EXTRA_OPTIMIZERS:
            base = {"train.optimizer": optimizer,
                    "grid.learning_rate": CALIBRATE_LEARNING_RATES[optimizer]}
            yield name, {**base, **CALIBRATE_ZERO}, ("full", "large")
            yield name, {**base, **CALIBRATE_GROUPS}, ("full", "large")
    for name, _ in _CALIBRATE:
        for optimizer in _EXTRA_OPTIMIZERS:
            yield name, {"train.optimizer": optimizer,
                         "grid.learning_rate": CALIBRATE_LEARNING_RATES[optimizer],
                         **CALIBRATE_DROPOUT}, ("full", "large")
    for loss in CALIBRATE_LOSSES:
        for optimizer in _EXTRA_OPTIMIZERS:
            base = {"train.optimizer": optimizer,
                    "grid.learning_rate": CALIBRATE_LEARNING_RATES[optimizer],
                    "train.loss": loss}
            # full: the middle constant weight only (c = 1); large: the file's whole c grid
            yield CALIBRATE_LOSS_TASK, {**base, "grid.weight_value": [1.0]}, ("full",)
            yield CALIBRATE_LOSS_TASK, base, ("large",)
            yield CALIBRATE_LOSS_TASK, {**base, **CALIBRATE_BASELINES}, ("full", "large")


#: the depths (``model.depth``: hidden layers + 1) of the layer-by-layer experiment ``depth``
DEPTHS = (2, 3, 4, 6, 8)
#: the depths of the plateau experiment ``plateau`` (every weight layer at the small scale eps:
#: r = depth bottleneck layers, Rawal & DeWeese's plateau ~ eps^-(r-2))
PLATEAU_DEPTHS = (2, 3, 4)

#: the experiments ``jaxsym study`` runs, in order: (file stem in the bundled experiments,
#: overrides, presets that include it). quick: minutes on a 2-core CPU (the README's first
#: command); full: the committed figures/ (about 3 h on 2 cores); large: GPU scale (>= 512 seeds
#: on the bias-only grids, every width and depth variant; figures/predicted/ came from its
#: theory runs)
STUDY_EXPERIMENTS = (("bias_only_regression", {}, _ALL),
                     ("bias_only_classification", {}, _ALL),
                     ("bias_only_mnist1d", {}, ("full", "large")),
                     ("zero_init", {}, ("full", "large")),
                     ("zero_init", {"train.batch_size": 0}, ("large",)),
                     ("staircase", {}, _ALL),
                     ("escape", {"train.dtype": "float64"}, _ALL),
                     ("escape", {"train.dtype": "float32"}, _ALL),
                     ("escape", {"train.dtype": "bfloat16"}, _ALL),
                     ("noise_dose", {}, _ALL),
                     ("minibatch_noise", {}, _ALL),
                     ("label_noise", {}, _ALL),
                     # the two noises crossed with the knob the main runs hold fixed: minibatch
                     # noise with weight decay (at lr 0.2), label noise at half the step size
                     ("minibatch_noise", {"grid.weight_decay": [0.001],
                                          "grid.learning_rate": [0.2]}, ("full", "large")),
                     ("label_noise", {"grid.learning_rate": [0.05], "grid.weight_decay": [0.0]},
                      ("full", "large")),
                     # the unsafe plain kernel as a noise source, per training dtype
                     ("hardware_noise", {"train.dtype": "float32"}, _ALL),
                     ("hardware_noise", {"train.dtype": "bfloat16"}, ("full", "large")),
                     ("hardware_noise", {"train.dtype": "float64"}, ("full", "large")),
                     # deep networks layer by layer: one run per depth (quick: depth 3 only)
                     *(("depth", {"model.depth": d}, _ALL if d == 3 else ("full", "large"))
                       for d in DEPTHS),
                     # the small-weight plateau and the break, two clocks (quick: depth 3)
                     *(("plateau", {"model.depth": d}, _ALL if d == 3 else ("full", "large"))
                       for d in PLATEAU_DEPTHS),
                     ("saddle_slope", {}, _ALL),
                     # width scaling of the saddle: lr grows with m (the slope ~ m / lr) up to
                     # 0.2, where the symmetric mode of m = 32 is still stable
                     *(("saddle_slope", {"model.width": m, "train.learning_rate": lr,
                                         "train.steps": steps,
                                         "report.section": "width_scaling"}, ("large",))
                       for m, lr, steps in ((2, 0.025, 6000), (4, 0.05, 6000),
                                            (16, 0.2, 6000), (32, 0.2, 8000))),
                     # the theory's checks: quick keeps one of each kind, full adds the other
                     # classification tasks; the large preset's runs are in figures/predicted/
                     ("predict", {}, _ALL),
                     ("predict", {"model.depth": 3}, ("large",)),
                     ("predict_circles", {}, ("full", "large")),
                     ("classify", {}, _ALL),
                     ("classify", {"task.name": "circles"}, ("full", "large")),
                     ("classify", {"task.name": "teacher_student", "grid.loss": ["mse"]},
                      ("full", "large")),
                     ("weight_decay", {}, ("full", "large")),
                     *(("phase_diagram", {"model.depth": d},
                        _ALL if d in (4, 8, 16) else ("full", "large"))
                       for d in (2, 4, 8, 12, 16, 24, 32, 48, 64)),
                     *_calibrate_runs())

#: where ``jaxsym study`` writes its report by default, per preset: the main job (quick) never
#: overwrites the committed full-preset report in figures/
STUDY_FIGURES = {"quick": os.path.join("figures", "quick"), "full": "figures",
                 "large": os.path.join("figures", "large")}

#: overrides that change how a run is shown, not its results: not part of its run name
_PRESENTATION_KEYS = ("report.section",)


def run_suffix(overrides: dict) -> str:
    """The run-name suffix of an experiment's overrides: ``-VALUE`` per override (lists joined
    with ``+``), in order, leaving out presentation-only keys (``report.section``)."""
    return "".join(f"-{'+'.join(map(str, v)) if isinstance(v, list) else v}"
                   for k, v in overrides.items() if k not in _PRESENTATION_KEYS)


def run_name(name: str, overrides: dict, preset: str) -> str:
    """The run directory name of experiment ``name`` with ``overrides`` under ``preset``, e.g.
    ``saddle_slope-16-0.2-6000-large``."""
    return f"{name}{run_suffix(overrides)}-{preset}"
