"""The notebook API: ``jaxsym.run``, ``jaxsym.load``, ``jaxsym.report``.

>>> import jaxsym
>>> ds = jaxsym.run("experiments/example.toml", seeds=4, steps=300)   # an xarray.Dataset
>>> jaxsym.analysis.p_broken(ds).p            # P(broken) per grid point, with .low / .high
>>> jaxsym.report(ds)                         # REPORT.md + figures in runs/example/report

The same validation as the command line runs before anything is written (bad keys and values,
tasks that cannot be built, a study that cannot fit in memory: :class:`ValueError` with one
line naming the key), and the same run directory is used, so a notebook and ``jaxsym run``
share, resume and lock the same results. No global JAX setting is changed: float64 studies
enable float64 only while they train.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["run", "load", "report", "study"]

#: keyword shortcuts of :func:`run` (as the command line's --seeds / --steps / --dtype)
SHORTCUTS = {"seeds": "seeds.count", "steps": "train.steps", "dtype": "train.dtype"}


def study(config, preset: str | None = None, overrides: dict | None = None, **keywords):
    """A validated :class:`jaxsym.study.config.Study` from a config path, TOML text or a Study.

    ``overrides``: ``{"section.key": value}``; ``keywords``: the shortcuts ``seeds``, ``steps``,
    ``dtype`` or ``section__key=value`` (e.g. ``train__learning_rate=0.05``)."""
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


def run(config, preset: str | None = None, out=None, *, overrides: dict | None = None,
        progress: bool = False, chunk_size: int = 256, force: bool = False,
        wait: bool = False, **keywords):
    """Train every network of a study (resuming ``out``) and return its results Dataset.

    Args:
      config: a config path, TOML text or a :class:`jaxsym.study.config.Study`.
      preset: the config's ``[preset.NAME]`` to apply.
      out: run directory (default ``runs/<study name>``, as ``jaxsym run``).
      overrides, keywords: see :func:`study`.
      progress, chunk_size, force, wait: as ``jaxsym run``'s options.

    Returns:
      the results ``xarray.Dataset`` (schema: :mod:`jaxsym.engine.results`; statistics with intervals:
      :mod:`jaxsym.analysis`).

    Raises:
      ValueError: bad config, task or size (one line naming the key); nothing is written.
      jaxsym.engine.store.RunDirError: ``out`` holds another study, or another process holds it.
    """
    from jaxsym.study import config as config_module
    from jaxsym.engine import sweep

    resolved = study(config, preset, overrides, **keywords)
    task = config_module.build_task(resolved)
    problem = sweep.check_resources(resolved, task)
    if problem:
        raise ValueError(problem)
    out = Path(out if out is not None else os.path.join("runs", resolved.name))
    dataset = sweep.run_study(resolved, out, chunk_size=chunk_size, force=force,
                              progress=progress, wait=wait)
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
