"""Does a fresh `jaxsym study --preset quick` on another CPU reproduce the committed conclusions?

    jaxsym study --preset quick                      # the reference runs in runs/
    python benchmarks/cross_machine.py --out benchmarks/results

runs the quick study again in a subprocess under another kernel family (default: XLA's own and
Eigen's kernels limited to AVX2, ``jaxsym.core.exactness.KERNEL_FAMILIES["xla-avx2"]``, i.e. another
CPU emulated on this one) into ``--runs`` (default ``runs-xla-avx2``), then compares, cell by
cell, what the report concludes:

* every bias-only cell's P(broken) at sigma_b = 0 and its smallest sigma_b with P >= 0.9:
  must be EQUAL;
* every log-law slope: the other run's slope must lie inside the reference's 95% CI;
* every escape dtype floor sigma_b* and the noise-dose P(broken): must be equal; the escape
  log-law slopes (fitted from 100 unit roundoffs up): inside the reference's CI;
* the saddle-slope fits: inside the reference's CI;
* the linearised-escape runs (predict*): every per-draw measured median inside the
  reference's CI and the same verdict (prediction within 5% or not);
* the depth runs: every (grid point, hidden layer) P(broken) in the same class, the KM median
  inside the reference's CI, every network's break of that layer within 2 steps or 2%;
* the plateau runs: the same per layer, every network's plateau end within 2 steps or 2%,
  and each activation's plateau exponent inside the reference's CI;
* the classification runs: every (cell, draw, sigma_b) measured P(broken) in the same class
  (>= 0.9, <= 0.1, between); the W = 0 runs (zero_init): every grid point's P(broken) class.

``--only predict classify`` reruns just those experiments (their quick preset, or
``--preset full``) and compares only them with the reference's run of the same preset, e.g.
``--preset full --only bias_only_mnist1d`` (after ``jaxsym study --preset full``).

``--preset full --study-runs calibrate_teacher-sgd calibrate_digits-adam`` reruns the study's
runs whose names start with those prefixes (a calibration pair: its constant-W, baseline,
alternative, W = 0, unit-group and dropout runs), with the study's own overrides, and compares
the calibration's conclusions: every recommendation, baseline and alternative verdict EQUAL,
the recommended (c, sigma_b) cell among the reference's near ties, sigma_90 per c inside the
reference's CI. ``--native-reference`` trains those runs natively into ``--reference`` first
(resuming finished ones), so one command makes both sides on a machine without the study's runs;
``--strategy vmap`` trains the other side with another batching strategy as well.

Writes ``OUT/cross_machine.json`` and ``.md`` (every compared cell, and the count that differ).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402


def compare(reference: Path, other: Path, names: list[str] | None = None) -> list[dict]:
    """Cell-by-cell comparison of two sets of quick-study run directories (all of the
    reference's, or ``names``)."""
    from jaxsym.analysis import bias_only as analysis_bias_only
    from jaxsym.analysis import classify as analysis_classify
    from jaxsym.analysis import escape as analysis_escape
    from jaxsym.analysis import predict as analysis_predict
    from jaxsym.analysis import saddle as analysis_saddle
    from jaxsym.analysis.common import study_of
    from jaxsym.engine import store
    from jaxsym.theory import predict

    rows = []
    names = names or sorted(p.name for p in reference.iterdir()
                            if (p / "results.nc").exists())
    for name in names:
        if not (other / name / "results.nc").exists():
            rows.append({"run": name, "what": "missing in the other run", "same": False})
            continue
        ref, oth = store.load(reference / name), store.load(other / name)
        if name.startswith("bias_only"):
            for a, b in zip(analysis_bias_only.summarize(ref), analysis_bias_only.summarize(oth)):
                cell = f"{a['weight_mode']}/{a['activation']}"
                for key in ("p_broken_zero", "sigma_p90"):
                    va = a[key][0] if isinstance(a[key], tuple) else a[key]
                    vb = b[key][0] if isinstance(b[key], tuple) else b[key]
                    rows.append({"run": name, "what": f"{cell} {key}", "reference": va,
                                 "other": vb, "same": va == vb})
                if a["fit"] is not None:
                    fb = b["fit"].b if b["fit"] is not None else None
                    rows.append({"run": name, "what": f"{cell} slope",
                                 "reference": [a["fit"].b, a["fit"].b_low, a["fit"].b_high],
                                 "other": fb, "same": fb is not None
                                 and a["fit"].b_low <= fb <= a["fit"].b_high})
        elif name.startswith("escape"):
            va, vb = analysis_escape.dtype_floor(ref), analysis_escape.dtype_floor(oth)
            rows.append({"run": name, "what": "floor sigma_b*", "reference": va, "other": vb,
                         "same": va == vb})
            (fa, _), (fb, _) = analysis_escape.escape_fit(ref), analysis_escape.escape_fit(oth)
            if fa is not None:
                rows.append({"run": name, "what": "log-law slope above 100 u",
                             "reference": [fa.b, fa.b_low, fa.b_high],
                             "other": None if fb is None else fb.b,
                             "same": fb is not None and fa.b_low <= fb.b <= fa.b_high})
        elif name.startswith("noise_dose"):
            for act in ref.activation.values:
                pa = ref.sel(activation=act).broken.mean("seed").values.tolist()
                pb = oth.sel(activation=act).broken.mean("seed").values.tolist()
                rows.append({"run": name, "what": f"{act} P(broken) per noise", "reference": pa,
                             "other": pb, "same": pa == pb})
        elif name.startswith("predict"):
            study = study_of(ref)
            predictions = predict.pooled_escape(study)
            for a, b in zip(analysis_predict.compare(ref, predictions),
                            analysis_predict.compare(oth, predictions)):
                if a["draw"] is None:
                    continue
                what = (f"{'/'.join(map(str, a['cell'].values()))} draw {a['draw']} "
                        f"sigma_b {a['sigma_b']:.0e}")
                ma, mb = a["measured"], b["measured"]
                inside = (not ma.reached and not mb.reached) or (
                    mb.reached and ma.low <= mb.median <= (ma.high if ma.high < float("inf")
                                                           else float("inf")))
                rows.append({"run": name, "what": f"{what}: median inside the reference CI, "
                             "prediction verdict", "reference": [ma.median, a["agree"]],
                             "other": [mb.median, b["agree"]],
                             "same": bool(inside and a["agree"] == b["agree"])})
        elif name.startswith("classify"):
            predictions = predict.classify_study(study_of(ref))
            for a, b in zip(analysis_classify.classification_rows(ref, predictions),
                            analysis_classify.classification_rows(oth, predictions)):
                what = (f"{'/'.join(map(str, a['cell'].values()))} draw {a['draw']} "
                        f"sigma_b {a['sigma_b']:.0e}")
                rows.append({"run": name, "what": f"{what}: measured P class",
                             "reference": a["p_measured"], "other": b["p_measured"],
                             "same": _p_class(a["p_measured"]) == _p_class(b["p_measured"])})
        elif name.startswith("saddle_slope"):
            fa, fb = analysis_saddle.saddle_fits(ref), analysis_saddle.saddle_fits(oth)
            for key in fa:
                rows.append({"run": name, "what": f"slope {key}",
                             "reference": [fa[key].b, fa[key].b_low, fa[key].b_high],
                             "other": fb[key].b,
                             "same": fa[key].b_low <= fb[key].b <= fa[key].b_high})
        elif name.startswith(("minibatch_noise", "label_noise")):
            # every grid point: the same P(broken) class, the KM median inside the reference's
            # CI, and every network's break within 2 steps or 2% (network by network)
            from jaxsym.analysis import stats
            from jaxsym.analysis.stochastic import network_agreement

            axes = [d for d in ref.broken.dims if d != "seed"]
            for index in np.ndindex(*(ref.sizes[d] for d in axes)):
                sel = dict(zip(axes, index))
                a, b = ref.isel(sel), oth.isel(sel)
                cell = "/".join(str(a[d].values) for d in axes)
                ta, tb = (np.where(x.broken.values, x.time_to_break.values, np.inf)
                          for x in (a, b))
                ma = stats.median_time(a.time_to_break.values, a.broken.values)
                mb = stats.median_time(b.time_to_break.values, b.broken.values)
                inside = (not ma.reached and not mb.reached) or (
                    mb.reached and ma.low <= mb.median <= ma.high)
                agree = int(network_agreement(tb, ta).sum())
                pa, pb = float(a.broken.mean()), float(b.broken.mean())
                rows.append({"run": name, "what": f"{cell}: P(broken) class, median inside the "
                             "reference CI, networks whose break agrees",
                             "reference": [pa, ma.median, ta.size],
                             "other": [pb, mb.median, agree],
                             "same": bool(_p_class(pa) == _p_class(pb) and inside
                                          and agree == ta.size)})
        elif name.startswith(("depth", "plateau")):
            # every grid point and hidden layer: the same P(broken) class, the KM median
            # inside the reference's CI, and every network's break of that layer within 2
            # steps or 2% (network by network); plateau runs: the plateau's end too
            if name.startswith("plateau"):
                rows += _plateau_rows(name, ref, oth)
            from jaxsym.analysis import stats
            from jaxsym.analysis.stochastic import network_agreement

            axes = [d for d in ref.broken.dims if d != "seed"]
            for index in np.ndindex(*(ref.sizes[d] for d in axes)):
                sel = dict(zip(axes, index))
                a, b = ref.isel(sel), oth.isel(sel)
                for layer in range(a.sizes["layer"]):
                    cell = "/".join(str(a[d].values) for d in axes) + f"/layer {layer + 1}"
                    ea, eb = (x.broken_layer.values[:, layer] for x in (a, b))
                    ta, tb = (np.where(e, x.time_to_break_layer.values[:, layer], np.inf)
                              for e, x in ((ea, a), (eb, b)))
                    ma = stats.median_time(a.time_to_break_layer.values[:, layer], ea)
                    mb = stats.median_time(b.time_to_break_layer.values[:, layer], eb)
                    inside = (not ma.reached and not mb.reached) or (
                        mb.reached and ma.low <= mb.median <= ma.high)
                    agree = int(network_agreement(tb, ta).sum())
                    pa, pb = float(ea.mean()), float(eb.mean())
                    rows.append({"run": name, "what": f"{cell}: P(broken) class, median "
                                 "inside the reference CI, networks whose break agrees",
                                 "reference": [pa, ma.median, ta.size],
                                 "other": [pb, mb.median, agree],
                                 "same": bool(_p_class(pa) == _p_class(pb) and inside
                                              and agree == ta.size)})
        elif name.startswith("zero_init"):
            # every grid point (weights x optimizer x lr x sigma_b): same P(broken) class
            pa, pb = (d.broken.mean("seed") for d in (ref, oth))
            for index in np.ndindex(pa.shape):
                cell = "/".join(str(pa[index].coords[dim].values) for dim in pa.dims)
                va, vb = float(pa.values[index]), float(pb.values[index])
                rows.append({"run": name, "what": f"{cell}: P(broken) class", "reference": va,
                             "other": vb, "same": _p_class(va) == _p_class(vb)})
    return rows


def _plateau_rows(name, ref, oth) -> list[dict]:
    """A plateau run: at every grid point every network's plateau end (``time_to_converge``)
    within 2 steps or 2%; per activation the other's plateau exponent inside the reference's
    95% CI."""
    from jaxsym.analysis import plateau
    from jaxsym.analysis.stochastic import network_agreement

    rows = []
    axes = [d for d in ref.converged.dims if d != "seed"]
    for index in np.ndindex(*(ref.sizes[d] for d in axes)):
        sel = dict(zip(axes, index))
        ta, tb = (np.where(x.converged.values, x.time_to_converge.values, np.inf)
                  for x in (ref.isel(sel), oth.isel(sel)))
        agree = int(network_agreement(tb, ta).sum())
        cell = "/".join(str(ref.isel(sel)[d].values) for d in axes)
        rows.append({"run": name, "what": f"{cell}: networks whose plateau end agrees",
                     "reference": int(ta.size), "other": agree, "same": agree == ta.size})
    (ra,), (rb,) = (plateau.analyse([(x, None)])["runs"] for x in (ref, oth))
    for activation, a in ra["activations"].items():
        ea, eb = a["exponent"], rb["activations"][activation]["exponent"]
        rows.append({"run": name, "what": f"{activation}: plateau exponent inside the "
                     "reference CI", "reference": [ea.mean, ea.low, ea.high], "other": eb.mean,
                     "same": bool(ea.low <= eb.mean <= ea.high)})
    return rows


def _sigma_same(a, b) -> bool:
    """Two sigma_90 fits agree: the same status and, for fitted values, the other's value
    inside the reference's interval."""
    if a.status != b.status:
        return False
    return a.status != "fit" or a.low <= b.value <= a.high


def compare_calibration(reference: Path, other: Path, names: list[str]) -> list[dict]:
    """:func:`calibration_rows` of two sets of run directories (``names``: calibration runs
    present in both)."""
    from jaxsym.engine import store

    return calibration_rows(*([(store.load(root / n), root / n) for n in names]
                              for root in (reference, other)))


def calibration_rows(reference, other) -> list[dict]:
    """The calibration's conclusions of two lists of ``(dataset, run_dir)`` entries (the same
    runs made twice), pair by pair (task, optimizer, loss) and activation: the
    recommendation's verdict must be EQUAL; the other's recommended (c, sigma_b) cell must be
    one of the reference's near ties (:func:`jaxsym.analysis.calibrate.near_ties`: cells the
    validation split cannot tell apart); its sigma_90 per c inside the reference's CI (same
    status); every baseline's and alternative's verdict (W = 0, dropout, the unit groups
    needed) EQUAL."""
    from jaxsym.analysis import calibrate

    numbers = [calibrate.analyse(entries) for entries in (reference, other)]
    rows = []
    for pa, pb in zip(*(n["pairs"] + n["loss_pairs"] for n in numbers)):
        run = f"calibrate {pa['task']}/{pa['optimizer']}/{pa['loss']}"
        for ra, rb in zip(pa["rows"], pb["rows"]):
            act, reca, recb = ra["activation"], ra["recommendation"], rb["recommendation"]
            rows.append({"run": run, "what": f"{act} recommendation verdict",
                         "reference": reca["verdict"], "other": recb["verdict"],
                         "same": reca["verdict"] == recb["verdict"]})
            cell = (recb["c"], recb["sigma_b"])
            rows.append({"run": run, "what": f"{act} recipe cell among the reference's near ties",
                         "reference": [[c, s] for c, s in reca["near"]], "other": list(cell),
                         "same": cell in reca["near"]})
            for c, fa in ra["fits"].items():
                fb = rb["fits"][c]
                rows.append({"run": run, "what": f"{act} sigma_90 at c = {c:g}",
                             "reference": [fa.status, fa.value, fa.low, fa.high],
                             "other": [fb.status, fb.value], "same": _sigma_same(fa, fb)})
            verdicts = [(f"baseline {m}", ra["baselines"][m]["verdict"],
                         rb["baselines"][m]["verdict"]) for m in ra["baselines"]]
            for kind in ("zero", "dropout"):
                if ra[kind] is not None:
                    verdicts.append((kind, ra[kind]["verdict"], rb[kind]["verdict"]))
            if ra["groups"] is not None:
                verdicts.append(("unit groups needed", ra["groups"]["needed"],
                                 rb["groups"]["needed"]))
            for what, va, vb in verdicts:
                rows.append({"run": run, "what": f"{act} {what}", "reference": va, "other": vb,
                             "same": va == vb})
    return rows


def study_runs(preset: str, prefixes: list[str]) -> list[tuple]:
    """The study's runs of ``preset`` whose run name starts with one of ``prefixes``:
    ``[(run name, bundled experiment name, overrides)]``, in study order."""
    from jaxsym.study.experiments import STUDY_EXPERIMENTS, run_name

    return [(run_name(name, overrides, preset), name, overrides)
            for name, overrides, presets in STUDY_EXPERIMENTS
            if preset in presets and any(run_name(name, overrides, preset).startswith(p)
                                         for p in prefixes)]


def train_runs(planned: list[tuple], preset: str, root: Path, flags: str | None,
               strategy: str = "auto") -> None:
    """``jaxsym run`` each of ``planned`` (:func:`study_runs`) into ``root / name`` with the
    study's overrides, in a subprocess with ``XLA_FLAGS=flags`` (None: the machine's own
    kernels, no XLA_FLAGS) and the batching ``strategy``; finished runs resume."""
    import json

    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if flags is not None:
        env["XLA_FLAGS"] = flags
    for name, experiment, overrides in planned:
        sets = [a for k, v in overrides.items() for a in ("--set", f"{k}={json.dumps(v)}")]
        subprocess.run([sys.executable, "-m", "jaxsym", "run", experiment, "--preset", preset,
                        *sets, "--out", str(root / name), "--strategy", strategy,
                        "--no-progress", "--yes"], env=env,
                       check=True)


def _p_class(p: float) -> str:
    return "broken" if p >= 0.9 else "kept" if p <= 0.1 else "mixed"


def main(argv=None) -> int:
    from jaxsym.core import exactness

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="xla-avx2", choices=sorted(exactness.KERNEL_FAMILIES))
    parser.add_argument("--reference", type=Path, default=Path("runs"))
    parser.add_argument("--runs", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=_common.DEFAULT_RESULTS)
    parser.add_argument("--compare-only", action="store_true")
    parser.add_argument("--only", nargs="+", metavar="EXPERIMENT", default=None,
                        help="rerun only these experiments/NAME.toml (into RUNS/NAME-PRESET) "
                             "instead of the whole quick study, and compare only them")
    parser.add_argument("--study-runs", nargs="+", metavar="PREFIX", default=None,
                        help="rerun the study's runs of --preset whose run name starts with a "
                             "PREFIX (e.g. calibrate_teacher-sgd: the constant-W, baseline "
                             "and alternative runs of that pair), with the study's overrides, "
                             "and compare them (calibration runs: verdicts, recipe cell among "
                             "near ties, sigma_90)")
    parser.add_argument("--native-reference", action="store_true",
                        help="with --study-runs: first train the same runs natively (no "
                             "XLA_FLAGS) into --reference, resuming any finished ones, so one "
                             "command makes both sides of the comparison")
    parser.add_argument("--strategy", default="auto", choices=("auto", "map", "vmap"),
                        help="with --study-runs: the batching strategy of the other side's "
                             "runs (jaxsym run --strategy; the reference side keeps auto)")
    parser.add_argument("--preset", default="quick", choices=("quick", "full", "large"),
                        help="preset of the --only runs (default quick; the whole-study "
                             "rerun is always quick)")
    args = parser.parse_args(argv)
    if args.preset != "quick" and not (args.only or args.study_runs):
        parser.error("--preset other than quick needs --only or --study-runs")
    if args.only and args.study_runs:
        parser.error("--only and --study-runs exclude each other")
    if args.native_reference and not args.study_runs:
        parser.error("--native-reference needs --study-runs")
    flags = exactness.KERNEL_FAMILIES[args.family]
    runs = args.runs or Path(f"runs-{args.family}")
    if args.study_runs:
        return _study_runs_main(args, flags, runs)
    if not args.compare_only:
        env = {**os.environ, "XLA_FLAGS": flags}
        if args.only:
            for name in args.only:
                subprocess.run([sys.executable, "-m", "jaxsym", "run",
                                str(Path("experiments") / f"{name}.toml"), "--preset",
                                args.preset, "--out", str(runs / f"{name}-{args.preset}"),
                                "--no-progress"],
                               env=env, check=True)
        else:
            subprocess.run([sys.executable, "-m", "jaxsym", "study", "--preset", "quick",
                            "--runs", str(runs), "--figures", str(runs / "figures"),
                            "--no-progress"], env=env, check=True)
    rows = compare(args.reference, runs, [f"{n}-{args.preset}" for n in args.only]
                   if args.only else None)
    command = (f"python benchmarks/cross_machine.py --family {args.family}"
               + (f" --preset {args.preset}" if args.preset != "quick" else "")
               + (f" --only {' '.join(args.only)}" if args.only else ""))
    stem = "cross_machine" + ("_" + "_".join(args.only) if args.only else "") + (
        f"_{args.preset}" if args.preset != "quick" else "")
    return _write(args, flags, rows, stem, "The study under another kernel family vs the "
                  "reference runs", command)


def _write(args, flags, rows, stem, title, command, names=None) -> int:
    """Write OUT/STEM.json and .md (every compared conclusion, the count that differ) and
    print the summary line."""
    differ = [r for r in rows if not r["same"]]
    table = _common.markdown_table(
        ["run", "compared", "reference", "other", "same"],
        [[r["run"], r["what"], str(r.get("reference")), str(r.get("other")),
          "yes" if r["same"] else "NO"] for r in rows])
    markdown = "\n".join([
        f"# {title}", "", f"`{command}` (XLA_FLAGS '{flags}'); reference: `{args.reference}`"
        + (f"; runs: {', '.join(names)}" if names else ""), "",
        _common.machine_markdown(_common.machine_info()), "",
        f"**{len(rows) - len(differ)} of {len(rows)} compared conclusions agree.**", "", table])
    _common.write_results(args.out, stem, {"family": args.family, "flags": flags,
                                           **({"runs": names} if names else {}),
                                           "rows": rows, "differ": len(differ)}, markdown)
    print(f"{len(rows) - len(differ)} of {len(rows)} agree; differing: "
          + "; ".join(f"{r['run']} {r['what']}" for r in differ))
    return 0


def _study_runs_main(args, flags, runs) -> int:
    planned = study_runs(args.preset, args.study_runs)
    if not planned:
        raise SystemExit(f"cross_machine.py: no run of the {args.preset} study starts with "
                         f"{' or '.join(args.study_runs)}")
    sides = ([(args.reference, None)] if args.native_reference else []) + [(runs, flags)]
    for root, side_flags in sides if not args.compare_only else ():
        train_runs(planned, args.preset, root, side_flags,
                   args.strategy if root == runs else "auto")
    names = [name for name, _, _ in planned]
    calibration = [n for n in names if n.startswith("calibrate")]
    others = [n for n in names if n not in calibration]
    rows = compare(args.reference, runs, others) if others else []
    if calibration:
        rows += compare_calibration(args.reference, runs, calibration)
    stem = "cross_machine_" + "_".join(args.study_runs) + f"_{args.preset}"
    command = (f"python benchmarks/cross_machine.py --family {args.family} --preset "
               f"{args.preset} --study-runs {' '.join(args.study_runs)}"
               + (" --native-reference" if args.native_reference else "")
               + (f" --strategy {args.strategy}" if args.strategy != "auto" else ""))
    return _write(args, flags, rows, stem, "Study runs under another kernel family vs the "
                  "reference runs", command, names)


if __name__ == "__main__":
    raise SystemExit(main())
