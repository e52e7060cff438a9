"""The report's sections as data: which analysis turns which stored results into numbers.

Contract: every result names its section kind (``[report] section`` in its config, stored in
``results.nc`` as the attribute ``report_section``; results written before the key existed
read as ``"generic"``). :func:`analyse` loads run directories (or takes in-memory Datasets),
groups them by kind and returns ``[(kind, numbers)]`` in :data:`REPORT_ORDER`, ``numbers``
being what the kind's function in :data:`ANALYSES` returns; :mod:`jaxsym.reporting` renders
each with the section module of the same kind. A new kind of section is one entry here, one
function in an analysis module and one section module in :mod:`jaxsym.reporting`.
"""

from __future__ import annotations

from pathlib import Path

from jaxsym import analysis
from jaxsym.analysis import (bias_only, calibrate, classify, depth, escape, hardware_noise,
                             noise_dose, phase, plateau, predict, saddle, staircase, stochastic,
                             weight_decay, zero_init)
from jaxsym.study.experiments import SECTION_KINDS

__all__ = ["ANALYSES", "ALSO_READS", "REPORT_ORDER", "section_kind", "load", "analyse",
           "analyse_generic"]


def analyse_generic(entries) -> dict:
    """``{"runs": [(dataset, analysis.summary(dataset))]}``."""
    return {"runs": [(ds, analysis.summary(ds)) for ds, _ in entries]}


#: the analysis of each section kind: ``entries -> numbers``, ``entries`` a list of
#: ``(dataset, run directory or None)``
ANALYSES = {"bias_only": bias_only.analyse, "predict": predict.analyse,
            "classify": classify.analyse, "zero_init": zero_init.analyse,
            "staircase": staircase.analyse, "escape": escape.analyse,
            "noise_dose": noise_dose.analyse, "width_scaling": saddle.analyse_width,
            "saddle_slope": saddle.analyse_slope, "phase_diagram": phase.analyse,
            "calibrate": calibrate.analyse, "weight_decay": weight_decay.analyse,
            "stochastic": stochastic.analyse, "hardware_noise": hardware_noise.analyse,
            "depth": depth.analyse, "plateau": plateau.analyse,
            "generic": analyse_generic}
#: sections that also read the runs of other kinds (the width-scaling table has a row for
#: the base saddle_slope run; the saddle section states the log-law of every experiment that
#: trains its network)
ALSO_READS = {"width_scaling": ("saddle_slope",),
              "saddle_slope": ("escape", "noise_dose", "bias_only")}
#: the order of the sections in REPORT.md
REPORT_ORDER = ("calibrate", "bias_only", "predict", "classify", "weight_decay", "zero_init",
                "staircase", "depth", "plateau", "escape", "noise_dose", "hardware_noise",
                "stochastic", "width_scaling", "saddle_slope",
                "phase_diagram", "generic")


def section_kind(ds) -> str:
    """The section kind a result is reported in (``ds.attrs["report_section"]``).

    Raises:
      ValueError: an unknown kind (one line naming the known ones).
    """
    kind = ds.attrs.get("report_section", "generic")
    if kind not in SECTION_KINDS:
        raise ValueError(f"results of study '{ds.attrs.get('name', '?')}' ask for report "
                         f"section {kind!r}; known sections: {', '.join(SECTION_KINDS)}")
    return kind


def load(sources) -> list[tuple]:
    """``[(dataset, run directory or None)]`` of run directories and/or Datasets (a Dataset
    that came from a run directory, e.g. from :func:`jaxsym.run`, keeps it: its predictions
    are cached there)."""
    from jaxsym.engine import store

    entries = []
    for source in sources:
        if hasattr(source, "data_vars"):
            origin = source.encoding.get("source")
            entries.append((source, Path(origin).parent if origin else None))
        else:
            entries.append((store.load(source), Path(source)))
    return entries


def analyse(entries) -> list[tuple[str, dict]]:
    """``[(kind, numbers)]`` of every section kind present in ``entries``, in
    :data:`REPORT_ORDER`."""
    by_kind: dict[str, list] = {}
    for entry in entries:
        by_kind.setdefault(section_kind(entry[0]), []).append(entry)
    out = []
    for kind in REPORT_ORDER:
        if kind in by_kind:
            extra = [e for other in ALSO_READS.get(kind, ()) for e in by_kind.get(other, [])]
            out.append((kind, ANALYSES[kind](by_kind[kind] + extra)))
    return out
