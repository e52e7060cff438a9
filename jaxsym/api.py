"""The one orchestration: ``jaxsym.run``, ``jaxsym.load``, ``jaxsym.report`` (the command line
calls these too).

>>> import jaxsym
>>> ds = jaxsym.run("experiments/example.toml", seeds=4, steps=300)   # an xarray.Dataset
>>> jaxsym.analysis.p_broken(ds).p            # P(broken) per grid point, with .low / .high
>>> jaxsym.report(ds)                         # REPORT.md + figures in runs/example/report

Running a study is always: validate (:func:`study`) -> plan once (:func:`plan`, no JAX) ->
resource check (:func:`resource_problem`) -> the engine (:func:`jaxsym.engine.run.run_study`).
The same validation as the command line runs before anything is written (bad keys and values,
tasks that cannot be built, a study that cannot fit in memory: :class:`ValueError` with one
line naming the key), and the same run directory is used, so a notebook and ``jaxsym run``
share, resume and lock the same results. No global JAX setting is changed: float64 studies
enable float64 only while they train.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

__all__ = ["run", "load", "report", "study", "plan", "resource_problem", "estimate",
           "experiment_studies", "experiment_plans", "default_out"]

#: keyword shortcuts of :func:`run` (as the command line's --seeds / --steps / --dtype)
SHORTCUTS = {"seeds": "seeds.count", "steps": "train.steps", "dtype": "train.dtype"}


def study(config, preset: str | None = None, overrides: dict | None = None, **keywords):
    """A validated :class:`jaxsym.study.config.Study` from a config path (or a bundled
    experiment's name), TOML text or a Study.

    ``overrides``: ``{"section.key": value}``; ``keywords``: the shortcuts ``seeds``, ``steps``,
    ``dtype`` or ``section__key=value`` (e.g. ``train__learning_rate=0.05``).

    Raises:
      ConfigError: one line naming the key and the allowed values.
    """
    from jaxsym.study import config as config_module

    if isinstance(config, config_module.Study):
        result = config
    elif isinstance(config, Path) or (isinstance(config, str) and "\n" not in config
                                      and "=" not in config):
        result = config_module.load_study(config, preset=preset)
    else:
        result = config_module.parse_study(str(config), preset=preset)
    combined = dict(overrides or {})
    for key, value in keywords.items():
        if key in SHORTCUTS:
            combined[SHORTCUTS[key]] = value
        elif "__" in key:
            combined[key.replace("__", ".", 1)] = value
        else:
            raise config_module.ConfigError(
                f"argument {key!r}: unknown keyword; allowed: {', '.join(SHORTCUTS)} or "
                "section__key (e.g. train__learning_rate)")
    return config_module.apply_overrides(result, combined)


def plan(validated, chunk_size: int = 256):
    """The :class:`jaxsym.study.plan.StudyPlan` of a validated study (every data draw's task
    built once; no JAX). Raises ConfigError (one line) when a task cannot be built."""
    from jaxsym.study import plan as plan_module

    return plan_module.plan(validated, chunk_size)


def estimate(planned) -> dict:
    """:func:`jaxsym.engine.resources.resource_estimate` of a plan (networks, bytes, seconds)."""
    from jaxsym.engine import resources

    return resources.resource_estimate(planned)


def resource_problem(planned) -> str | None:
    """One line when the planned study cannot fit in this machine's memory, else None."""
    from jaxsym.engine import resources

    return resources.check_resources(planned)


def default_out(name: str) -> Path:
    """The run directory of a study named ``name`` when none is given: ``runs/NAME``."""
    return Path(os.path.join("runs", name))


def experiment_studies(preset: str) -> list[tuple]:
    """``[(validated Study, run name), ...]`` of every bundled experiment of ``preset``
    (:data:`jaxsym.study.experiments.STUDY_EXPERIMENTS`), in order.

    Raises:
      ConfigError: a bundled config does not validate (one line naming the key).
      ValueError: ``preset`` is not one of :data:`jaxsym.study.experiments.PRESETS`.
    """
    from jaxsym.study import experiments

    if preset not in experiments.PRESETS:
        raise ValueError(f"unknown preset {preset!r}; allowed: {', '.join(experiments.PRESETS)}")
    runs = []
    for name, overrides, presets in experiments.STUDY_EXPERIMENTS:
        if preset in presets:
            validated = study(experiments.BUNDLED_DIR / f"{name}.toml", preset, overrides)
            runs.append((validated, experiments.run_name(validated.name, overrides, preset)))
    return runs


def experiment_plans(preset: str) -> list[tuple]:
    """``[(StudyPlan, run name), ...]`` of :func:`experiment_studies`, each planned; raises
    ConfigError naming the first that fails."""
    return [(plan(validated), name) for validated, name in experiment_studies(preset)]


def run(config, preset: str | None = None, out=None, *, overrides: dict | None = None,
        progress: bool = False, chunk_size: int | None = None, force: bool = False,
        wait: bool = False, options=None, **keywords):
    """Train every network of a study (resuming ``out``) and return its results Dataset.

    Args:
      config: a config path, TOML text, a :class:`jaxsym.study.config.Study` or a
        :class:`jaxsym.study.plan.StudyPlan` (then ``preset``, ``overrides``, ``keywords`` and
        ``chunk_size`` are its own already).
      preset: the config's ``[preset.NAME]`` to apply.
      out: run directory (default ``runs/<study name>``, as ``jaxsym run``).
      overrides, keywords: see :func:`study`.
      progress, chunk_size, force, wait: as ``jaxsym run``'s options (chunk size default 256).
      options: a :class:`jaxsym.engine.run.RunOptions` for the engine's other options
        (strategy, map batch, processes); ``progress``, ``force`` and ``wait`` replace its
        fields of those names.

    Returns:
      the results ``xarray.Dataset`` (schema: :mod:`jaxsym.engine.results`; statistics with
      intervals: :mod:`jaxsym.analysis`); None on a process other than 0 of a distributed run.

    Raises:
      ValueError: bad config, task or size (one line naming the key); nothing is written.
      jaxsym.engine.store.RunDirError: ``out`` holds another study, or another process holds it.
      jaxsym.engine.store.RunWriteError: results.nc could not be written (the chunks are kept).
    """
    from jaxsym.study import plan as plan_module

    if isinstance(config, plan_module.StudyPlan):
        if preset or overrides or keywords or chunk_size not in (None, config.chunk_size):
            raise ValueError("run: a StudyPlan is already validated and planned; pass the "
                             "config or Study to change its preset, overrides or chunk size")
        planned = config
    else:
        planned = plan(study(config, preset, overrides, **keywords),
                       256 if chunk_size is None else chunk_size)
    problem = resource_problem(planned)
    if problem:
        raise ValueError(problem)
    from jaxsym.engine import run as engine

    out = Path(out) if out is not None else default_out(planned.study.name)
    options = dataclasses.replace(options or engine.RunOptions(), progress=progress,
                                  force=force, wait=wait)
    dataset = engine.run_study(planned, out, options)
    if dataset is not None:
        dataset.encoding["source"] = str(out / "results.nc")
    return dataset


def load(run_dir):
    """The results Dataset of a finished run directory (:func:`jaxsym.engine.store.load`)."""
    from jaxsym.engine import store

    return store.load(run_dir)


def report(results, out=None) -> Path:
    """Write REPORT.md and its figures for one or several results; returns REPORT.md's path.

    ``results``: a run directory, a Dataset (from :func:`run` or :func:`load`) or a list of
    them. ``out`` defaults to ``<run directory>/report`` for a single run directory or a
    Dataset that came from one; it is required otherwise."""
    from jaxsym import reporting as report_module

    sources = list(results) if isinstance(results, (list, tuple)) else [results]
    if out is None:
        if len(sources) != 1:
            raise ValueError("report: out= is required for several results")
        source = sources[0]
        if hasattr(source, "data_vars"):
            origin = source.encoding.get("source")
            if not origin:
                raise ValueError("report: out= is required for a Dataset that did not come "
                                 "from a run directory")
            out = Path(origin).parent / "report"
        else:
            out = Path(source) / "report"
    return report_module.write_report(sources, out)
