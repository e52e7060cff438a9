"""Study configs: TOML -> a frozen, validated :class:`Study`.

Contract: :func:`parse_study` (text) and :func:`load_study` (path) either return a fully
validated :class:`Study` or raise :class:`ConfigError` whose message is ONE line naming the key
and the allowed values. Nothing here touches the file system beyond reading the config.

Schema (every section and key optional unless marked; defaults in :data:`DEFAULTS`)::

    name = "example"                      # study name (default: the file's stem)
    [task]   name = "teacher_student"  seed = 0   (+ the task's own options, see jaxsym.study.tasks)
             draws = 1     # independent data draws: task seeds seed, seed + 1, ...; each
                           # grid point trains seeds.count networks on EVERY draw
             validation = 0   # the last N training rows are held out as a validation split
                              # (val_loss / val_accuracy records; to tune on, never the test set)
    [model]  depth = 2   width = 8   activation = "tanh"     # depth = number of weight layers
    [train]  loss = "mse"  optimizer = "sgd"  learning_rate = 0.1  steps = 1000
             batch_size = 0 (0 = full batch)   dtype = "float32" | "float64" | "bfloat16"
             noise = 0.0     # after every update, p <- p (1 + noise N(0, 1)) elementwise:
                             # emulated non-deterministic kernels (0 = off, exact arithmetic)
             weight_decay = 0.0   # coupled L2: the optimizer follows L + (wd / 2) ||theta||^2
                                  # (all weights and biases; 0 = off, the plain step bit for bit)
             dropout = 0.0   # training-time inverted dropout on every hidden unit, rate in
                             # [0, 1) (0 = off); records and test scores use no dropout
             label_noise = 0.0   # every step's targets + label_noise N(0, 1), fresh each
                                 # step (mse only; 0 = off): label-noise SGD
             kernel = "exact"    # "plain": the UNSAFE textbook products (natural layout, no
                                 # padding), whose remainder kernels may round one unit
                                 # differently; machine-dependent, for the hardware_noise
                                 # experiment only (jaxsym.core.spec.KERNELS)
    [init]   weight_mode = "constant" | "zero" | "glorot" | "normal" | "tied" | ... (WEIGHT_MODES)
             weight_value = 1.0  fan_in_scaled = true   # constant mode: value / sqrt(fan_in)
             W_std = 1.0                                 # normal, tied: N(0, W_std^2 / fan_in)
             sigma_b = 0.0                               # every bias ~ N(0, sigma_b^2)
             eps = 0.0                                   # tied: + eps * N(0, 1)
             groups = 1          # grouped: Glorot W shared by this many groups of identical
                                 # hidden units (integer >= 1; >= the width: Glorot itself)
    [grid]   AXIS = [v1, v2, ...]  or  AXIS = {logspace = [lo, hi], num = n, zero = true}
             numeric axes (traced): sigma_b, weight_value, W_std, learning_rate, eps, noise,
             weight_decay, groups, dropout, label_noise
             categorical axes: activation, loss, optimizer, kernel (one compile each), weight_mode
             (traced as an index: init schemes share one compile)
             static integer axis: batch_size (one compile each; 0 = full batch)
    [seeds]  count = 8   root = 0
    [record] checkpoints = 24   gradient_steps = 12
    [thresholds] diversity = 1e-2   # broken: s2/s1 > it, so it must lie in (0, 1)
                 loss = 1e-2        # converged: training loss <= it, so it must be > 0
    [report] section = "generic"    # how the report shows the run (one of SECTION_KINDS in
                                    # jaxsym.study.experiments); changes no result
    [preset.NAME] "section.key" = value ...   # named overrides, e.g. quick / full

Ranges: each knob and threshold is checked against what it is compared with; sigma_b, W_std,
eps, noise, weight_decay >= 0; dropout in [0, 1); ``train.learning_rate >= 0`` (0 is a
legitimate control: the networks stay at their init, so whatever is broken is broken by the init
alone).

A preset is applied only when asked for (``parse_study(text, preset="quick")``); its keys are
dotted config keys, including grid axes (``"grid.sigma_b" = [...]``).
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from jaxsym.study import tasks
from jaxsym.study.experiments import BUNDLED_DIR, SECTION_KINDS, bundled_names
from jaxsym.core.activations import activation_names
from jaxsym.core.spec import DTYPES, KERNELS, LOSSES, OPTIMIZERS, WEIGHT_MODES

__all__ = ["ConfigError", "Study", "parse_study", "load_study", "NUMERIC_AXES",
           "CATEGORICAL_AXES", "STATIC_AXES", "WEIGHT_MODES", "DEFAULTS", "apply_overrides", "BUNDLED_DIR",
           "bundled_names"]

NUMERIC_AXES = ("sigma_b", "weight_value", "W_std", "learning_rate", "eps", "noise",
                "weight_decay", "groups", "dropout", "label_noise")
CATEGORICAL_AXES = ("activation", "loss", "weight_mode", "optimizer", "kernel")
#: integer grid axes that are static (each value is one compile, like a categorical axis)
STATIC_INT_AXES = ("batch_size",)
#: the grid axes that split a grid into static groups (one compile each)
STATIC_AXES = ("activation", "loss", "optimizer", "batch_size", "kernel")

DEFAULTS: dict[str, dict[str, Any]] = {
    "task": {"name": "teacher_student", "seed": 0, "draws": 1, "validation": 0},
    "model": {"depth": 2, "width": 8, "activation": "tanh"},
    "train": {"loss": "mse", "optimizer": "sgd", "learning_rate": 0.1, "steps": 1000,
              "batch_size": 0, "dtype": "float32", "noise": 0.0,
              "weight_decay": 0.0, "dropout": 0.0, "label_noise": 0.0, "kernel": "exact"},
    "init": {"weight_mode": "constant", "weight_value": 1.0, "fan_in_scaled": True,
             "W_std": 1.0, "sigma_b": 0.0, "eps": 0.0, "groups": 1},
    "seeds": {"count": 8, "root": 0},
    "record": {"checkpoints": 24, "gradient_steps": 12},
    "thresholds": {"diversity": 1e-2, "loss": 1e-2},
    "report": {"section": "generic"},
}
SECTIONS = ("name", "description") + tuple(DEFAULTS) + ("grid", "preset")
_CHOICES = {"model.activation": activation_names(), "train.loss": LOSSES,
            "train.optimizer": OPTIMIZERS, "train.dtype": DTYPES, "train.kernel": KERNELS,
            "init.weight_mode": WEIGHT_MODES, "task.name": tasks.task_names(),
            "report.section": SECTION_KINDS}
# where each grid axis lives in the config
AXIS_SECTION = {"sigma_b": "init", "weight_value": "init", "W_std": "init", "eps": "init",
                "groups": "init",
                "learning_rate": "train", "noise": "train", "weight_decay": "train",
                "dropout": "train", "label_noise": "train", "activation": "model", "loss": "train",
                "weight_mode": "init", "optimizer": "train", "batch_size": "train",
                "kernel": "train"}
_NONNEGATIVE = {"init.sigma_b", "init.W_std", "init.eps", "train.learning_rate", "train.noise",
                "train.weight_decay", "train.label_noise"}
#: thresholds: (low, high) open interval (None: unbounded) and what the value is compared with
_OPEN_RANGE = {
    "thresholds.diversity": (0.0, 1.0, "it is compared with s2/s1, which lies in [0, 1]"),
    "thresholds.loss": (0.0, None, "it is compared with the training loss, which is >= 0")}
#: rates: [0, high) half-open interval and why
_RATE_RANGE = {"train.dropout": (1.0, "the fraction of units dropped; 1 would drop them all")}
_POSITIVE_INT = {"model.depth", "model.width", "train.steps", "seeds.count", "task.draws",
                 "init.groups", "record.checkpoints"}


class ConfigError(ValueError):
    """A config problem; ``str(error)`` is one line naming the key and the allowed values."""


@dataclass(frozen=True)
class Study:
    """A validated study.

    Attributes:
      name: study name.
      sections: ``{section: {key: value}}`` with every default filled in (grid excluded).
      grid: ``((axis, values), ...)`` in config order; values a tuple of floats (numeric axes)
        or strings (categorical axes).
      text: the TOML text it came from (provenance).
      preset: the ``[preset.NAME]`` applied ("" for none).
      overrides: ``(("section.key", value), ...)`` applied after the preset (``--set`` etc.).
    """

    name: str
    sections: dict = field(hash=False, compare=False)
    grid: tuple
    text: str = ""
    preset: str = ""
    overrides: tuple = ()

    def get(self, dotted: str):
        """Value of ``"section.key"`` (the scalar setting, not the grid)."""
        section, key = dotted.split(".", 1)
        return self.sections[section][key]

    @property
    def grid_axes(self) -> tuple[str, ...]:
        return tuple(axis for axis, _ in self.grid)

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return tuple(len(values) for _, values in self.grid)

    @property
    def n_grid_points(self) -> int:
        return int(np.prod(self.grid_shape, dtype=np.int64))

    @property
    def networks_per_point(self) -> int:
        """Networks per grid point: ``seeds.count`` on each of ``task.draws`` data draws."""
        return self.sections["seeds"]["count"] * self.sections["task"]["draws"]

    @property
    def n_networks(self) -> int:
        return self.n_grid_points * self.networks_per_point

    @property
    def task_options(self) -> dict:
        """The task's own options (everything in [task] but name, seed, draws, validation)."""
        return {k: v for k, v in self.sections["task"].items()
                if k not in ("name", "seed", "draws", "validation")}

    @classmethod
    def from_dataset(cls, ds) -> "Study":
        """The study a results Dataset was run from: its stored config text (``attrs["config"]``),
        name, preset and JSON overrides, re-validated (:class:`ConfigError` if this version
        rejects them)."""
        study = parse_study(ds.attrs["config"], name=ds.attrs["name"],
                            preset=ds.attrs.get("preset") or None)
        return apply_overrides(study, json.loads(ds.attrs.get("overrides", "{}")))

    def make_task(self, draw: int = 0):
        """The task of data draw ``draw`` (task seed ``task.seed + draw``), with its last
        ``task.validation`` training rows held out (:func:`jaxsym.study.tasks.hold_out`)."""
        if not 0 <= draw < self.sections["task"]["draws"]:
            raise ValueError(f"draw must be in [0, {self.sections['task']['draws']}), got {draw}")
        task = tasks.make_task(self.get("task.name"), seed=self.get("task.seed") + draw,
                               **self.task_options)
        return tasks.hold_out(task, self.get("task.validation"))


def _fail(key: str, message: str):
    raise ConfigError(f"config key '{key}': {message}")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: largest integer settings: PRNG seeds are 32-bit, step counters int32
_INT_MAX = {"seeds.root": 2**32 - 1, "train.steps": 2**31 - 2, "*": 2**31 - 1}


def _check_value(key: str, value, default):
    if key in _CHOICES:
        if value not in _CHOICES[key]:
            _fail(key, f"unknown value {value!r}; allowed: {', '.join(_CHOICES[key])}")
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            _fail(key, f"expected true or false, got {value!r}")
        return value
    if isinstance(default, int) and not isinstance(default, bool) and key != "init.weight_value":
        if not isinstance(value, int) or isinstance(value, bool):
            _fail(key, f"expected an integer, got {value!r}")
        if key in _POSITIVE_INT and value < 1:
            _fail(key, f"must be an integer >= 1, got {value}")
        if value < 0:
            _fail(key, f"must be >= 0, got {value}")
        if value > _INT_MAX.get(key, _INT_MAX["*"]):
            _fail(key, f"must be <= {_INT_MAX.get(key, _INT_MAX['*'])}, got {value}")
        return value
    if isinstance(default, float) or key == "init.weight_value":
        if not _is_number(value) or not math.isfinite(value):
            _fail(key, f"expected a finite number, got {value!r}")
        if key in _NONNEGATIVE and value < 0:
            _fail(key, f"must be >= 0, got {value}")
        if key in _OPEN_RANGE:
            _check_open_range(key, float(value))
        if key in _RATE_RANGE and not 0 <= value < _RATE_RANGE[key][0]:
            _fail(key, f"must be in [0, {_RATE_RANGE[key][0]:g}) ({_RATE_RANGE[key][1]}), "
                  f"got {value}")
        return float(value)
    return value


def _check_open_range(key: str, value: float) -> None:
    """``value`` strictly inside the range of :data:`_OPEN_RANGE` (one-line error otherwise)."""
    low, high, compared = _OPEN_RANGE[key]
    if value <= low or (high is not None and value >= high):
        where = f"in ({low:g}, {high:g})" if high is not None else f"> {low:g}"
        _fail(key, f"must be {where} ({compared}), got {value}")


def _check_task_option(key: str, value, kind: type = int):
    """Task options by the generator's default: sizes (``kind`` int) are integers >= 1, noise
    levels (float) finite numbers >= 0, integers included (``noise = 0`` is ``0.0``)."""
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            _fail(key, f"expected an integer >= 1, got {value!r}")
        return value
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        _fail(key, f"expected a finite number >= 0, got {value!r}")
    return float(value)


def _axis_values(axis: str, spec) -> tuple:
    key = f"grid.{axis}"
    if isinstance(spec, dict):
        if axis not in NUMERIC_AXES:
            _fail(key, "a {logspace = ...} range needs a numeric axis; numeric axes: "
                  + ", ".join(NUMERIC_AXES))
        unknown = sorted(set(spec) - {"logspace", "num", "zero"})
        if unknown or "logspace" not in spec:
            _fail(key, f"a range takes logspace = [lo, hi], num, zero; got {sorted(spec)}")
        bounds, num = spec["logspace"], spec.get("num", 9)
        if (not isinstance(bounds, list) or len(bounds) != 2
                or not all(_is_number(b) and math.isfinite(b) for b in bounds)):
            _fail(key, f"logspace must be [lo, hi] (base-10 exponents), got {bounds!r}")
        if not isinstance(num, int) or isinstance(num, bool) or num < 1:
            _fail(key, f"num must be an integer >= 1, got {num!r}")
        values = [float(v) for v in np.logspace(bounds[0], bounds[1], num)]
        if spec.get("zero", False):
            values = [0.0] + values
        spec = values
    if not isinstance(spec, list) or not spec:
        _fail(key, "expected a non-empty list of values or {logspace = [lo, hi], num = n}")
    section_key = f"{AXIS_SECTION[axis]}.{axis}"
    default = DEFAULTS[AXIS_SECTION[axis]][axis]
    try:  # checked like the section key (its allowed values), reported under the grid key
        values = tuple(_check_value(section_key, v, default) for v in spec)
    except ConfigError as error:
        raise ConfigError(str(error).replace(f"'{section_key}'", f"'{key}'", 1)) from None
    if len(set(values)) != len(values):
        _fail(key, f"values must be distinct, got {list(spec)}")
    return values


def _set_dotted(raw: dict, dotted: str, value) -> None:
    if "." not in dotted:
        raise ConfigError(f"config key '{dotted}': expected section.key, e.g. train.steps")
    section, key = dotted.split(".", 1)
    raw.setdefault(section, {})
    if not isinstance(raw[section], dict):
        raise ConfigError(f"config key '{dotted}': {section} is not a section")
    raw[section][key] = value


def _load_raw(text: str, preset: str | None) -> dict:
    """TOML text -> dict with the named preset applied and the [preset] tables removed."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config is not valid TOML: {error}") from None
    presets = raw.pop("preset", {})
    if not isinstance(presets, dict) or not all(isinstance(p, dict) for p in presets.values()):
        _fail("preset", "expected [preset.NAME] tables of \"section.key\" = value")
    if preset:
        if preset not in presets:
            _fail("preset", f"unknown preset {preset!r}; allowed: "
                  f"{', '.join(presets) or '(none defined in this config)'}")
        for dotted, value in presets[preset].items():
            _set_dotted(raw, dotted, value)
    return raw


def parse_study(text: str, name: str = "study", preset: str | None = None) -> Study:
    """Parse and validate TOML ``text`` (see the module docstring for the schema).

    Args:
      text: the TOML config.
      name: study name when the config has none.
      preset: name of a ``[preset.NAME]`` table to apply (None: no preset).

    Raises:
      ConfigError: malformed TOML, unknown section/key/name/preset, bad type or range.
    """
    return _parse_raw(_load_raw(text, preset), text, name, preset or "")


def _parse_raw(raw: dict, text: str, name: str, preset: str, overrides: tuple = ()) -> Study:
    """Validate a raw TOML dict (preset already applied) into a :class:`Study`."""
    for section in raw:
        if section not in SECTIONS:
            _fail(section, f"unknown section; allowed: {', '.join(SECTIONS)}")
    sections = {}
    for section, defaults in DEFAULTS.items():
        given = raw.get(section, {})
        if not isinstance(given, dict):
            _fail(section, "expected a [section] table")
        values = dict(defaults)
        allowed = tuple(defaults)
        if section == "task":
            task_name = _check_value("task.name", given.get("name", defaults["name"]), None)
            allowed = allowed + tasks.task_options(task_name)
        for key, value in given.items():
            if key not in allowed:
                _fail(f"{section}.{key}", f"unknown key; allowed: {', '.join(allowed)}")
            if key in defaults:
                values[key] = _check_value(f"{section}.{key}", value, defaults[key])
            else:
                values[key] = _check_task_option(f"{section}.{key}", value,
                                                 tasks.option_kinds(task_name)[key])
        sections[section] = values
    grid_raw = raw.get("grid", {})
    if not isinstance(grid_raw, dict):
        _fail("grid", "expected a [grid] table")
    grid = []
    for axis, spec in grid_raw.items():
        allowed_axes = NUMERIC_AXES + CATEGORICAL_AXES + STATIC_INT_AXES
        if axis not in allowed_axes:
            _fail(f"grid.{axis}", "unknown grid axis; allowed: " + ", ".join(allowed_axes))
        grid.append((axis, _axis_values(axis, spec)))
    for key in ("name", "description"):
        if key in raw and not isinstance(raw[key], str):
            _fail(key, "expected a string")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", raw.get("name", name) or ""):
        _fail("name", "expected letters, digits, '_', '-' and '.', starting with a letter or "
              f"digit (it names the run directory runs/NAME), got {raw.get('name', name)!r}")
    study = Study(name=raw.get("name", name), sections=sections, grid=tuple(grid), text=text,
                  preset=preset, overrides=overrides)
    _check_consistency(study)
    return study


def _check_consistency(study: Study) -> None:
    """Cross-key checks: a hidden layer to break symmetry in, batch size vs data, loss vs task
    kind."""
    if study.get("model.depth") < 2:
        _fail("model.depth", "must be >= 2 (depth counts weight layers: with 1 there is no "
              f"hidden layer, no units, no symmetry to break), got {study.get('model.depth')}")
    task = study.sections["task"]
    kind = tasks.TASKS[task["name"]][1]
    losses = dict(study.grid).get("loss", (study.get("train.loss"),))
    for loss in losses:
        if kind == "regression" and loss != "mse":
            _fail("train.loss", f"task {task['name']!r} is a regression; allowed: mse")
    label_noise = max(dict(study.grid).get("label_noise", (study.get("train.label_noise"),)))
    if label_noise > 0 and (kind != "regression" or set(losses) != {"mse"}):
        _fail("train.label_noise", "label noise perturbs regression targets; it needs a "
              f"regression task and loss mse (task {task['name']!r} is a {kind})")
    n_train = task.get("n_train")
    key = "grid.batch_size" if "batch_size" in study.grid_axes else "train.batch_size"
    batch = max(dict(study.grid).get("batch_size", (study.get("train.batch_size"),)))
    if n_train is not None and batch > n_train - task["validation"]:
        _fail(key, f"must be <= task.n_train - task.validation = "
              f"{n_train - task['validation']} (0 = full batch), got {batch}")


def load_study(path: str | Path, preset: str | None = None) -> Study:
    """Read and validate the TOML file at ``path`` (or the bundled experiment of that name,
    e.g. ``"example"``, when no such file exists); the study name defaults to its stem."""
    path = Path(path)
    if not path.exists() and path.suffix == "" and len(path.parts) == 1 \
            and (BUNDLED_DIR / f"{path}.toml").is_file():
        path = BUNDLED_DIR / f"{path}.toml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read config {str(path)!r}: {error.strerror} (or name a "
                          f"bundled experiment: {', '.join(bundled_names())})") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"cannot read config {str(path)!r}: not UTF-8 text (byte "
                          f"{error.start}); TOML files are UTF-8") from None
    return parse_study(text, name=path.stem, preset=preset)


def apply_overrides(study: Study, overrides: dict[str, Any]) -> Study:
    """A new study with ``{"section.key": value}`` overrides (after its preset), re-validated.

    Values given as strings are parsed as TOML values when possible (``"1e-3"`` -> 0.001).
    """
    if not overrides:
        return study
    combined = dict(study.overrides)
    for dotted, value in overrides.items():
        if isinstance(value, str):
            try:
                value = tomllib.loads(f"v = {value}")["v"]
            except tomllib.TOMLDecodeError:
                pass
        combined[dotted] = value
    raw = _load_raw(study.text, study.preset) if study.text else {}
    for dotted, value in combined.items():
        _set_dotted(raw, dotted, value)
    raw.setdefault("name", study.name)
    return _parse_raw(raw, study.text, study.name, study.preset, tuple(combined.items()))
