"""Does this machine reach the committed report's calibration conclusions?

    python benchmarks/cross_report.py --preset full --study-runs calibrate_spirals-adam --train

trains (``--train``: natively, resuming finished runs, with the study's own overrides) the
full-preset calibration runs whose names start with each PREFIX into ``--runs`` (default
``runs``), renders their calibration tables as the report does
(:func:`jaxsym.reporting.calibrate.render`) and compares them, row by row, with the same rows of
the committed report (``--report``, default ``figures/REPORT.md``), which names the machine it
was made on. Unlike ``cross_machine.py``, which reruns a pair under another kernel family of
this CPU and needs both sides' runs, the reference here is the committed text: the runs of the
other machine are not needed, so a machine with another CPU (vendor, vector ISA) checks the
committed table by training one side only.

Compared per (table, task, optimizer, activation) row present in both:

* every verdict must be EQUAL: the recommendation's "as well as Glorot?", the W = 0 and dropout
  verdicts of the alternatives table, each unit-group count's verdict and "groups needed", and
  the loss table's verdicts;
* the recipe cell (c, sigma_b) must lie inside the committed recipe's near-tie ranges;
* every sigma_90 (the recommendation's, and per c): 'never' on both sides, or intervals that
  overlap ('<= x' against a fitted CI reaching x), or a fitted value inside the committed CI;
* reported, not a conclusion: how many test scores fall inside the committed 95% CI.

Writes ``OUT/cross_report_<prefixes>_<preset>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

#: a verdict at the end of a cell ("... : yes", "... no", "... ?") or a whole-cell verdict
_VERDICT = re.compile(r"(?:^|[:\s])(yes|no|unclear|\?)(?:\s*\(.*\))?$")
_SCORE = re.compile(r"^([-+0-9.e]+) \[([-+0-9.e]+), ([-+0-9.e]+)\]")
_NUMBER = r"([0-9.]+(?:e[-+]?[0-9]+)?)"
_RECIPE = re.compile(rf"c = {_NUMBER}, sigma_b = {_NUMBER}")
_TIES = re.compile(rf"near ties: c {_NUMBER}(?:-{_NUMBER})?, sigma_b {_NUMBER}(?:-{_NUMBER})?\)")
#: columns whose whole text is a conclusion
_EXACT_COLUMNS = ("groups needed",)


def table_rows(markdown: str) -> dict:
    """``{(header, task, optimizer, activation): {column: cell}}`` of every markdown table row
    whose table's first three columns are task, optimizer and activation (``header``: the
    table's columns joined by ``|``)."""
    rows, header = {}, None
    for line in markdown.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            continue
        if set(line.strip()) <= set("|-"):
            continue
        if header[:3] == ["task", "optimizer", "activation"] and len(cells) == len(header):
            rows[("|".join(header), *cells[:3])] = dict(zip(header[3:], cells[3:]))
    return rows


def verdict(cell: str) -> str | None:
    """The verdict a cell states (yes / no / unclear / ?), or None."""
    match = _VERDICT.search(cell)
    return match.group(1) if match else None


def _score(cell: str):
    match = _SCORE.match(cell)
    return tuple(float(v) for v in match.groups()) if match else None


def sigma_agrees(reference: str, other: str) -> bool:
    """Whether two sigma_90 cells agree: 'never' only with 'never'; '<= x' (at or below the
    smallest sigma_b tried, x) with '<= x', or with a fitted value whose CI reaches down to x
    (the two intervals overlap); two fitted values when ``other``'s lies inside
    ``reference``'s CI. The non-monotone note ('P < 0.9 again at x') is not compared."""
    ref, oth = (cell.split(";")[0].strip() for cell in (reference, other))
    if ref == "never" or oth == "never":
        return ref == oth
    if ref.startswith("<=") and oth.startswith("<="):
        return ref == oth
    if ref.startswith("<=") or oth.startswith("<="):
        bound, fit = (ref, oth) if ref.startswith("<=") else (oth, ref)
        fitted = _score(fit)
        return bool(fitted and fitted[1] <= float(bound[2:]))
    fit, value = _score(ref), _score(oth)
    return bool(fit and value and fit[1] <= value[0] <= fit[2])


def _recipe_inside_ties(reference: str, other: str) -> bool | None:
    """Whether ``other``'s recipe (c, sigma_b) lies in ``reference``'s recipe and near-tie
    ranges (None: not a recipe cell)."""
    ref, oth = _RECIPE.search(reference), _RECIPE.search(other)
    if not (ref and oth):
        return None
    c0, s0 = (float(v) for v in ref.groups())
    c, s = (float(v) for v in oth.groups())
    c_range, s_range = [c0, c0], [s0, s0]
    ties = _TIES.search(reference)
    if ties:
        c_lo, c_hi, s_lo, s_hi = ties.groups()
        c_range = [min(c0, float(c_lo)), max(c0, float(c_hi or c_lo))]
        s_range = [min(s0, float(s_lo)), max(s0, float(s_hi or s_lo))]
    return c_range[0] <= c <= c_range[1] and s_range[0] <= s <= s_range[1]


#: the calibration tables, by their fourth column
_TABLE_NAMES = {"constant-W recipe (c, sigma_b, lr)": "recommendation",
                "constant W + random b (recommended)": "alternatives", "k = 1": "unit groups",
                "softmax_ce: Glorot": "loss"}


def _table_name(header: str) -> str:
    column = header.split("|")[3]
    return _TABLE_NAMES.get(column, "sigma_90 per c" if column.startswith("sigma_90") else column)


def compare_rows(reference: dict, other: dict) -> tuple[list[dict], dict]:
    """Conclusion rows (``{"run", "what", "reference", "other", "same"}``) for the rows of
    ``other`` (:func:`table_rows`) that ``reference`` has too, and the score count
    ``{"inside": k, "scores": n}`` (test scores of ``other`` inside ``reference``'s CI)."""
    rows, inside, scores = [], 0, 0
    for key, cells in other.items():
        if key not in reference:
            continue
        header, task, optimizer, activation = key
        run = f"{task}/{optimizer}, {_table_name(header)}"
        for column, cell in cells.items():
            ref = reference[key].get(column)
            if ref is None:
                continue
            what = f"{activation}: {column}"
            if column.startswith("sigma_90"):
                rows.append({"run": run, "what": what, "reference": ref, "other": cell,
                             "same": sigma_agrees(ref, cell)})
                continue
            if column in _EXACT_COLUMNS:
                rows.append({"run": run, "what": what, "reference": ref, "other": cell,
                             "same": ref == cell})
                continue
            inside_ties = _recipe_inside_ties(ref, cell)
            if inside_ties is not None:
                rows.append({"run": run, "what": f"{what}: recipe inside the near ties",
                             "reference": ref, "other": cell, "same": inside_ties})
            va, vb = verdict(ref), verdict(cell)
            if va is not None or vb is not None:
                rows.append({"run": run, "what": what, "reference": va, "other": vb,
                             "same": va == vb})
            sa, sb = _score(ref), _score(cell)
            if sa and sb:
                scores += 1
                inside += sa[1] <= sb[0] <= sa[2]
    return rows, {"inside": inside, "scores": scores}


def render_calibration(run_dirs: list[Path]) -> str:
    """The calibration section the report would render from ``run_dirs`` (figures drawn into
    a temporary folder and discarded)."""
    from jaxsym.analysis import calibrate as analysis
    from jaxsym.engine import store
    from jaxsym.reporting import calibrate as section

    numbers = analysis.analyse([(store.load(d), d) for d in run_dirs])
    with tempfile.TemporaryDirectory() as figures:
        return "\n".join(section.render(numbers, Path(figures)))


def report_machine(markdown: str) -> str:
    """The machine rows of a report's calibration runs (its setup tables), deduplicated."""
    return "; ".join(sorted({line.split("|")[2].strip().split(",")[0]
                             for line in markdown.splitlines()
                             if line.startswith("| machine |")}))


def _isa() -> str:
    """The CPU's widest vector ISA as the runs' provenance records it."""
    from jaxsym.engine import provenance

    return provenance.machine_provenance()["cpu_isa"]


def main(argv=None) -> int:
    import cross_machine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="full", choices=("quick", "full", "large"))
    parser.add_argument("--study-runs", nargs="+", metavar="PREFIX", required=True)
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--report", type=Path, default=Path("figures/REPORT.md"))
    parser.add_argument("--train", action="store_true",
                        help="train the runs natively first (resuming finished ones)")
    parser.add_argument("--out", type=Path, default=_common.DEFAULT_RESULTS)
    args = parser.parse_args(argv)
    planned = [p for p in cross_machine.study_runs(args.preset, args.study_runs)
               if p[0].startswith("calibrate")]
    if not planned:
        parser.error(f"no calibration run of the {args.preset} study starts with "
                     f"{' or '.join(args.study_runs)}")
    if args.train:
        cross_machine.train_runs(planned, args.preset, args.runs, flags=None)
    names = [name for name, _, _ in planned]
    missing = [n for n in names if not (args.runs / n / "results.nc").exists()]
    if missing:
        parser.error("runs not trained (use --train): " + ", ".join(missing))
    committed = args.report.read_text()
    rows, scores = compare_rows(table_rows(committed),
                                table_rows(render_calibration([args.runs / n for n in names])))
    differ = [r for r in rows if not r["same"]]
    command = (f"python benchmarks/cross_report.py --preset {args.preset} --study-runs "
               + " ".join(args.study_runs) + (" --train" if args.train else ""))
    table = _common.markdown_table(
        ["run", "compared", "committed report", "this machine", "same"],
        [[r["run"], r["what"], str(r["reference"]), str(r["other"]),
          "yes" if r["same"] else "NO"] for r in rows])
    markdown = "\n".join([
        "# The committed report's calibration conclusions, reached again on this machine", "",
        f"`{command}`; reference: `{args.report}` (made on: {report_machine(committed)}); "
        f"runs: {', '.join(names)}", "", _common.machine_markdown(_common.machine_info())
        + f" Vector ISA: {_isa()} (the study's native kernels, no XLA_FLAGS).", "",
        f"**{len(rows) - len(differ)} of {len(rows)} compared conclusions agree.** Test scores "
        f"inside the committed 95% CI: {scores['inside']} of {scores['scores']} (not a "
        "conclusion: the networks' random draws are the same, their rounding is not).", "",
        table])
    stem = "cross_report_" + "_".join(args.study_runs) + f"_{args.preset}"
    _common.write_results(args.out, stem, {"report": str(args.report), "runs": names,
                                           "rows": rows, "differ": len(differ), **scores},
                          markdown)
    print(f"{len(rows) - len(differ)} of {len(rows)} agree; scores inside the committed CI: "
          f"{scores['inside']} of {scores['scores']}; differing: "
          + "; ".join(f"{r['run']} {r['what']}" for r in differ))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
