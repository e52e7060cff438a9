"""The same networks trained on two devices: a quick run here (CPU) against the large-preset run of
the same experiment from another device (``benchmarks/device_runs.sh``, e.g. a GPU).

A network's result depends only on (config, grid point, seed index) and the data draw; the
quick and large presets of the theory experiments differ only in ``seeds.count``, so the
networks of data draw 0 with seed index below the quick count are THE SAME networks in both
(same initial parameters, same data). For each experiment this compares them one by one:
whether each broke (must be identical: the conclusion), its step to break (rounding-level
differences move it by a few steps where the escape starts from rounding-sized deviations).

    python benchmarks/cross_device.py [--runs runs] [--only predict classify zero_init]

Writes ``benchmarks/results/cross_device.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402


def compare(quick, full) -> dict:
    """Network-by-network comparison of the draw-0 networks the two runs share."""
    count = quick.sizes["seed"] // int(quick.attrs.get("draws", 1))
    a, b = quick.isel(seed=slice(0, count)), full.isel(seed=slice(0, count))
    broken_a, broken_b = a.broken.values, b.broken.values
    both = broken_a & broken_b
    shift = np.abs(a.time_to_break.values - b.time_to_break.values)[both]
    return {"networks": int(broken_a.size), "broken_differ": int((broken_a != broken_b).sum()),
            "broken": int(broken_a.sum()),
            "break_step_equal": int((shift == 0).sum()),
            "break_step_max_shift": int(shift.max()) if shift.size else 0,
            "device_quick": quick.attrs.get("device_kind", "?"),
            "device_full": full.attrs.get("device_kind", "?"),
            "cpu_quick": quick.attrs.get("cpu_model", "?")}


def main(argv=None) -> int:
    from jaxsym.engine import store

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--only", nargs="+", default=["predict", "classify", "zero_init"])
    parser.add_argument("--out", type=Path, default=_common.DEFAULT_RESULTS)
    args = parser.parse_args(argv)
    rows = {}
    for name in args.only:
        quick, large = args.runs / f"{name}-quick", args.runs / f"{name}-large"
        if not (quick / "results.nc").exists() or not (large / "results.nc").exists():
            print(f"{name}: needs {quick}/results.nc and {large}/results.nc", file=sys.stderr)
            return 2
        rows[name] = compare(store.load(quick), store.load(large))
    table = _common.markdown_table(
        ["experiment", "shared networks", "broke", "'broken' differs", "same step to break",
         "largest step shift", "quick run on", "large run on"],
        [[n, r["networks"], r["broken"], r["broken_differ"],
          f"{r['break_step_equal']} of {r['broken']}", r["break_step_max_shift"],
          f"{r['cpu_quick']} ({r['device_quick']})", r["device_full"]]
         for n, r in rows.items()])
    differ = sum(r["broken_differ"] for r in rows.values())
    total = sum(r["networks"] for r in rows.values())
    markdown = "\n".join([
        "# The same networks on two devices", "",
        f"`python benchmarks/cross_device.py --only {' '.join(args.only)}`: the draw-0 networks "
        "shared by each experiment's quick run (here) and large-preset run (`benchmarks/device_runs.sh` "
        "on the device named in the table).", "",
        f"**{total - differ} of {total} networks reach the same conclusion (broken or not) on "
        "both devices.**", "", table])
    _common.write_results(args.out, "cross_device", {"rows": rows}, markdown)
    print(markdown)
    return 0 if differ == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
