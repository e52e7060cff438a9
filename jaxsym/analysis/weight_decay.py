"""Numbers of the weight-decay section: with L2 decay as a cost-function axis, the theory's
P(hidden layer 1 broken by the budget) per (activation, decay rate, data draw, sigma_b) against
the measured fraction, and the antisymmetric block at each decayed collapsed point.

Contract: :func:`analyse` ``(entries) -> dict`` for :mod:`jaxsym.reporting.weight_decay`; the
predictions (:func:`jaxsym.theory.predict.classify_study`, whose cells carry the decay rate,
and :func:`jaxsym.theory.predict.decayed_endpoints`) are computed once per run and cached.
"""

from __future__ import annotations

from jaxsym.analysis.classify import classification_rows
from jaxsym.analysis.common import study_of
from jaxsym.analysis.predictions import cached

__all__ = ["analyse", "per_draw_agreement"]

#: the issue's bar: the prediction holds in at least this fraction of the cells of every draw
TARGET = 0.9


def per_draw_agreement(rows) -> dict:
    """``{draw: (cells agreeing at every sigma_b, cells)}``: a cell (activation, decay rate)
    of a draw agrees when every one of its sigma_b entries agrees
    (:func:`jaxsym.analysis.classify.classification_rows`)."""
    cells: dict = {}
    for r in rows:
        key = (r["draw"], tuple(r["cell"].items()))
        cells[key] = cells.get(key, True) and r["agree"]
    out: dict = {}
    for (draw, _), ok in cells.items():
        agree, total = out.get(draw, (0, 0))
        out[draw] = (agree + ok, total + 1)
    return dict(sorted(out.items()))


def analyse(entries) -> dict:
    """``{"tables": [(ds, rows, endpoints, per_draw)], "target"}``: ``rows`` as in
    :func:`jaxsym.analysis.classify.classification_rows`, ``endpoints`` of
    :func:`jaxsym.theory.predict.decayed_endpoints`, ``per_draw`` of
    :func:`per_draw_agreement`."""
    from jaxsym.theory.predict import classify_study, decayed_endpoints

    tables = []
    for ds, run_dir in entries:
        study = study_of(ds)
        rows = classification_rows(ds, cached("weight_decay", study, run_dir, classify_study))
        ends = cached("weight_decay_endpoints", study, run_dir, decayed_endpoints)
        tables.append((ds, rows, ends, per_draw_agreement(rows)))
    return {"tables": tables, "target": TARGET}
