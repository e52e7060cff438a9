"""What every report section shares: the setup table generated from a result's stored config
and provenance, the study description, number formats, and the report file writer.

Contract: pure text from datasets' attributes (no statistics, no JAX); :func:`write_text_if_changed`
is the one writer of ``REPORT.md``.
"""

from __future__ import annotations

import math
from pathlib import Path

from jaxsym.analysis.common import ROUNDING_RULE, study_sections

__all__ = ["setup_table", "description", "source_label", "steps", "p_cell", "sigma_fit_cell",
           "score_cell",
           "write_text_if_changed", "PROVENANCE_ROWS", "LOSS_LABELS", "MODE_LABELS",
           "STATISTICS", "ROUNDING_MARK"]

#: how every number of the report is stated, once (the report prints it after the answer)
STATISTICS = (
    "**How the numbers are stated.** Probabilities come with 95% Wilson intervals; times are "
    "Kaplan-Meier medians with 95% CIs, right-censored at the budget ('> budget': fewer than "
    "half got there); means come with Student-t 95% CIs; fitted slopes and sigma_90 with "
    "stratified bootstrap 95% CIs; a log-law slope is stated as its small-sigma_b asymptote "
    "with a curvature check (section 'The log-law slope from the Hessian'); a count is over "
    "every row of its table, with the rows where the theory fails named; "
    + ROUNDING_RULE + ". Thresholds below that limit are marked " + "{mark}.")
#: the mark of a sigma_b threshold below the rounding limit
ROUNDING_MARK = "(rounding)"
STATISTICS = STATISTICS.format(mark=f"'{ROUNDING_MARK}'")

LOSS_LABELS = {"mse": "MSE", "bce": "binary CE", "softmax_ce": "softmax CE"}
MODE_LABELS = {"constant": "W constant (1/sqrt(fan_in))", "zero": "W = 0",
               "glorot": "Glorot W (baseline)", "normal": "W ~ N(0, W_std^2/fan_in)",
               "tied": "W tied + eps noise",
               "torch_default": "PyTorch default (W, b ~ U(+-1/sqrt(fan_in)))"}
#: provenance rows of the setup tables: they may differ between two runs with equal numbers
PROVENANCE_ROWS = ("| run |", "| machine |")


def steps(x: float) -> str:
    """Whole steps, without a '-0'."""
    return f"{round(x) + 0:d}"


def sigma_fit_cell(fit, p_target: float = 0.9) -> str:
    """A :class:`jaxsym.analysis.stats.SigmaFit` as ``"0.0012 [0.0003, 0.01]"``, ``"<= 1e-08"``
    (at or below the smallest sigma tried), ``"never"``, with ``"; P < 0.9 again at x"`` where
    the rate falls below the target at a larger sigma."""
    if fit.status == "never":
        text = "never"
    elif fit.status in ("always", "below"):
        text = f"<= {fit.value:g}"
    else:
        text = f"{fit.value:.2g} [{fit.low:.2g}, {fit.high:.2g}]"
    if fit.falls_above is not None and fit.status != "never":
        text += f"; P < {p_target:g} again at {fit.falls_above:g}"
    return text


def score_cell(interval, classification: bool) -> str:
    """A test score (:class:`jaxsym.analysis.stats.MeanInterval`) as ``mean [low, high]``:
    three decimals for an accuracy, three significant digits for a loss; ``n/a`` when there is
    none, the mean alone without an interval."""
    if interval is None or not math.isfinite(interval.mean):
        return "n/a"
    fmt = "{:.3f}" if classification else "{:.3g}"
    if not math.isfinite(interval.low):
        return fmt.format(interval.mean)
    return f"{fmt.format(interval.mean)} [{fmt.format(interval.low)}, {fmt.format(interval.high)}]"


def p_cell(cell) -> str:
    """``p [low, high]`` of a ``(p, low, high)`` triple (``n/a`` for None)."""
    return "n/a" if cell is None else f"{cell[0]:.2f} [{cell[1]:.2f}, {cell[2]:.2f}]"


def _weight_modes(study: dict) -> str:
    """The weight init schemes a study uses, in words (``study``: its stored identity)."""
    init = study["sections"]["init"]
    modes = dict(study["grid"]).get("weight_mode", [init["weight_mode"]])
    scaled = "/sqrt(fan_in)" if init["fan_in_scaled"] else ""
    words = {"constant": f"constant {init['weight_value']:g}{scaled}", "zero": "zero",
             "glorot": "Glorot normal", "normal": "N(0, W_std^2 / fan_in)",
             "tied": "one N(0, W_std^2 / fan_in) row for every unit + eps N(0, 1)"}
    return ", ".join(words[m] for m in modes)


def _grid_text(study: dict) -> str:
    return "; ".join(f"{axis} = "
                     + ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)
                     for axis, values in study["grid"])


def _provenance(attrs) -> list[str]:
    run = (f"| run | {attrs['n_devices']} {attrs['backend']} device(s), strategy "
           f"{attrs['strategy']} (networks per map step: "
           f"{attrs.get('nets_per_map_step', 'n/a')}), jaxsym {attrs['jaxsym_version']}, "
           f"git {attrs['git_sha'][:10]}"
           f"{' (uncommitted changes)' if attrs.get('git_dirty') == 'yes' else ''} |")
    machine = (f"| machine | {attrs.get('cpu_model', 'unknown')} ({attrs.get('cpu_isa', '?')}), "
               f"device kind {attrs.get('device_kind', '?')}, XLA_FLAGS "
               f"'{attrs.get('xla_flags', '')}'; jax {attrs['jax_version']}, jaxlib "
               f"{attrs.get('jaxlib_version', '?')}, optax {attrs.get('optax_version', '?')}, "
               f"numpy {attrs.get('numpy_version', '?')}"
               + (f", scipy {attrs['scipy_version']}, xarray {attrs['xarray_version']}"
                  if "scipy_version" in attrs else "") + " |")
    return [run, machine]


def setup_table(ds) -> str:
    """The setup of one run as a markdown table: task, network, training, init, grid, seeds,
    thresholds, and the provenance rows (:data:`PROVENANCE_ROWS`)."""
    import json

    study = json.loads(ds.attrs["study"])
    s = study["sections"]
    task_opts = ", ".join(f"{k} = {v}" for k, v in s["task"].items() if k != "name")
    train = s["train"]
    grid_axes = [axis for axis, _ in study["grid"]]
    batch = ("batch per grid point" if "batch_size" in grid_axes
             else "full batch" if train["batch_size"] == 0 else f"batch {train['batch_size']}")
    return "\n".join([
        "| setting | value |", "|---|---|",
        f"| task | {s['task']['name']} ({task_opts}) |",
        f"| network | depth {s['model']['depth']} (hidden layers: {s['model']['depth'] - 1}), "
        f"width {s['model']['width']}, layer sizes {ds.attrs['layer_sizes']} |",
        f"| training | {train['optimizer']}, lr {train['learning_rate']:g}, "
        f"{train['steps']} steps, {batch}, {train['dtype']}, loss {train['loss']} |",
        f"| init | weights: {_weight_modes(study)}; biases N(0, sigma_b^2) |",
        f"| grid | {_grid_text(study)} |",
        f"| seeds | {s['seeds']['count']} per grid point (preset: {ds.attrs.get('preset') or 'none'}) |",
        f"| broken | every hidden layer's s2/s1 > {s['thresholds']['diversity']:g} (first step) |",
        f"| converged | training loss <= {s['thresholds']['loss']:g} (first step) |",
        *_provenance(ds.attrs)])


def setups(datasets) -> list[str]:
    """The setup tables of several runs, each followed by an empty line."""
    return [line for ds in datasets for line in (setup_table(ds), "")]


def description(ds) -> str:
    """The study's description as plain text (never a heading): its config's ``description``
    key, else the config's leading comment lines without their ``#``."""
    try:
        text = study_sections(ds).get("description")
    except (KeyError, ValueError):
        text = None
    if not text:
        comments = []
        for line in ds.attrs.get("config", "").splitlines():
            if not line.startswith("#"):
                break
            comments.append(line.lstrip("#").strip())
        text = " ".join(c for c in comments if c)
    text = " ".join(text.split())
    return "*Study:* " + text.lstrip("#").strip() if text else ""


def source_label(source) -> str:
    """How the report's first line names a source: a run directory's path, or the study of an
    in-memory Dataset."""
    return f"`{source}`" if isinstance(source, (str, Path)) else \
        f"the Dataset of study `{source.attrs.get('name', '?')}`"


def _numbers_only(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith(PROVENANCE_ROWS)]


def write_text_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless the file already holds the same report up to the
    provenance rows (git sha, machine): re-running the main job on a fresh clone leaves the
    committed report (and ``git status``) untouched when it reproduces the numbers. Returns
    True when written."""
    from jaxsym.engine.store import write_atomic

    path = Path(path)
    try:
        if _numbers_only(path.read_text()) == _numbers_only(text):
            return False
    except (OSError, UnicodeDecodeError):
        pass
    write_atomic(path, lambda f: f.write(text.encode()))
    return True
