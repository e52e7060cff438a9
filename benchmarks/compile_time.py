"""Compile time of the sweep engine's chunk function: independent of N and of the grid size.

The engine compiles once per static group (``jaxsym.engine.runner.make_runner``); numeric grid axes and
seeds are traced. This script builds the benchmark study (MLP 2 -> width -> width -> 1, tanh,
MSE, full batch 256, SGD, 500 steps, ~30 checkpoints; see ``_common.study_toml``) with a grid
of 1 or 50 ``sigma_b`` values, prepares one chunk of N networks exactly as ``run_study`` does,
and times ahead-of-time compilation of the runner:

* trace + lower: ``runner.lower(*args)`` (Python tracing of one network, StableHLO);
* compile:       ``lowered.compile()`` (XLA);

with JAX's in-memory caches cleared before each measurement (no persistent cache is used),
after one discarded warm-up compile (the first compile of a process pays one-time setup).
Nothing is trained, so large N costs nothing. FLOPs play no role here; for the FLOP formula of
the workload see ``throughput.py``.

Usage::

    python benchmarks/compile_time.py            # N in {64, 1024} x grid in {1, 50}, 3 repeats
    python benchmarks/compile_time.py --quick    # 1 repeat (writes to results/quick/)
    python benchmarks/compile_time.py --n 64,1024,8192 --grid 1,50,500 --width 64
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import _common as common


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one repeat per configuration")
    parser.add_argument("--out", type=Path, default=None,
                        help="results directory (default benchmarks/results, --quick: "
                             "benchmarks/results/quick)")
    parser.add_argument("--n", default="64,1024", help="networks per chunk, comma-separated")
    parser.add_argument("--grid", default="1,50", help="numbers of sigma_b grid values")
    parser.add_argument("--width", type=int, default=16, help="hidden width (default 16)")
    parser.add_argument("--steps", type=int, default=500, help="SGD steps (default 500)")
    parser.add_argument("--strategy", choices=("map", "vmap"), default="map",
                        help="engine strategy (default map, the CPU default)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="compiles per configuration, median reported (default 3)")
    args = parser.parse_args(argv)
    args.n = [int(v) for v in args.n.split(",") if v]
    args.grid = [int(v) for v in args.grid.split(",") if v]
    args.repeats = args.repeats or (1 if args.quick else 3)
    if args.out is None:
        args.out = common.DEFAULT_RESULTS / "quick" if args.quick else common.DEFAULT_RESULTS
    return args


def measure(width: int, n: int, n_grid: int, steps: int, strategy: str) -> dict:
    """One cold trace + lower + compile of the runner for a chunk of ``n`` networks."""
    import jax

    from jaxsym.study import config
    from jaxsym.engine import runner

    jax.clear_caches()
    runner.make_runner.cache_clear()
    seeds = -(-n // n_grid)  # enough seeds for n networks in the grid's single static group
    study = config.parse_study(common.study_toml(width, seeds, steps=steps, n_sigma_b=n_grid))
    chunk = common.engine_chunk(study, n, strategy)
    start = time.perf_counter()
    lowered = chunk.runner.lower(*chunk.args)
    lowered_at = time.perf_counter()
    lowered.compile()
    done = time.perf_counter()
    return {"n": n, "grid_points": study.n_grid_points, "networks_in_study": study.n_networks,
            "chunk_length": chunk.length, "map_batch": chunk.batch,
            "lower_s": lowered_at - start,
            "compile_s": done - lowered_at, "total_s": done - start}


def main(argv=None) -> int:
    args = parse_args(argv)
    common.use_all_cores()
    import jax  # noqa: F401 - start JAX with the device count chosen above

    started = time.perf_counter()
    machine = common.machine_info()
    print(common.machine_markdown(machine), flush=True)
    # one discarded compile first: the first XLA compile of a process pays one-time setup
    measure(args.width, 2, 1, args.steps, args.strategy)
    rows = []
    for n in args.n:
        for n_grid in args.grid:
            runs = [measure(args.width, n, n_grid, args.steps, args.strategy)
                    for _ in range(args.repeats)]
            row = {**runs[0], **{k: statistics.median(r[k] for r in runs)
                                 for k in ("lower_s", "compile_s", "total_s")},
                   "total_s_all": [r["total_s"] for r in runs]}
            rows.append(row)
            print(f"N {n:6d}  grid {n_grid:4d} points  trace+lower {row['lower_s']:6.2f} s  "
                  f"compile {row['compile_s']:6.2f} s  total {row['total_s']:6.2f} s", flush=True)
    totals = [r["total_s"] for r in rows]
    spread = (max(totals) - min(totals)) / statistics.median(totals)
    result = {"benchmark": "compile_time", "machine": machine,
              "config": {"width": args.width, "depth": common.DEPTH, "steps": args.steps,
                         "strategy": args.strategy, "repeats": args.repeats,
                         "n": args.n, "grid": args.grid},
              "rows": rows, "relative_spread_of_total": spread,
              "wall_s": time.perf_counter() - started}
    table = common.markdown_table(
        ["N (chunk)", "grid points", "networks in study", "trace+lower s", "compile s",
         "total s"],
        [[r["n"], r["grid_points"], r["networks_in_study"], r["lower_s"], r["compile_s"],
          r["total_s"]] for r in rows])
    markdown = (f"# Engine compile time ({'quick' if args.quick else 'default'} run)\n\n"
                f"{common.machine_markdown(machine)}\n\n"
                f"One static group: MLP 2 -> {args.width} -> {args.width} -> 1, tanh, MSE, SGD, "
                f"{args.steps} steps, strategy {args.strategy} (map batch "
                f"{rows[0]['map_batch']}); cold `runner.lower(...)` and "
                f"`.compile()` of `runner.make_runner`, median of {args.repeats}.\n\n{table}\n\n"
                f"Spread of the totals: (max - min) / median = {100 * spread:.0f}%.\n")
    json_path, md_path = common.write_results(args.out, "compile_time", result, markdown)
    print(f"spread (max - min) / median of totals: {100 * spread:.0f}%; wrote {json_path} and "
          f"{md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
