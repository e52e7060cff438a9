"""Where a training step stops being flat in N, and which strategy is fastest, on an accelerator.

The benchmark workload W(N, width) (see ``_common``: 2 -> width -> width -> 1 tanh, MSE, full
batch 256, SGD, float32, the engine's real runner with its records) for N = 1, 4, 16, ...,
under the "vmap" and "map" strategies: wall time per training step of the whole chunk (compile
excluded, median of ``--repeats`` calls after one warm-up) and network-steps/s. On a GPU the
time per step is flat in N while the device is latency-bound (kernel launches of one step) and
grows ~linearly once the work fills it; the report gives, per width and strategy, the largest
N whose step time is within 2x of N = 1 ("flat up to").

    python benchmarks/device_scaling.py [--widths 16,64,256] [--max-n 65536] [--steps 200]

Writes ``OUT/device_scaling.json`` and ``.md``. Runs on CPU too (slowly); meant for the
device tool: ``run(command="python3 benchmarks/device_scaling.py --out $OUT")``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402


def time_chunk(width: int, n: int, strategy: str, steps: int, repeats: int) -> dict:
    import jax

    from jaxsym.study import config

    study = config.parse_study(_common.study_toml(width, n, steps=steps, checkpoints=6,
                                                  gradient_steps=0))
    chunk = _common.engine_chunk(study, n, strategy)
    started = time.perf_counter()
    jax.block_until_ready(chunk.runner(*chunk.args))
    compile_s = time.perf_counter() - started
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        jax.block_until_ready(chunk.runner(*chunk.args))
        times.append(time.perf_counter() - started)
    run_s = statistics.median(times)
    return {"width": width, "n": n, "strategy": strategy, "batch": chunk.batch,
            "first_call_s": compile_s, "run_s": run_s, "step_ms": 1e3 * run_s / steps,
            "net_steps_per_s": n * steps / run_s,
            "gflops": n * steps * _common.flops_per_network_step(width) / run_s / 1e9}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="16,64,256")
    parser.add_argument("--strategies", default="vmap,map")
    parser.add_argument("--max-n", type=int, default=65536)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget-s", type=float, default=400.0,
                        help="stop starting new measurements after this many seconds")
    parser.add_argument("--out", type=Path, default=_common.DEFAULT_RESULTS)
    args = parser.parse_args(argv)
    _common.use_all_cores()
    import jax

    started = time.perf_counter()
    rows = []
    for strategy in args.strategies.split(","):
        for width in (int(w) for w in args.widths.split(",")):
            n = 1
            while n <= args.max_n and time.perf_counter() - started < args.budget_s:
                row = time_chunk(width, n, strategy, args.steps, args.repeats)
                rows.append(row)
                print(f"width {width:4d} {strategy:5s} N {n:6d}: {row['step_ms']:8.3f} ms/step "
                      f"{row['net_steps_per_s']:12,.0f} net-steps/s "
                      f"(first call {row['first_call_s']:.1f} s)", flush=True)
                if row["run_s"] > 5:
                    break
                n *= 4
    flat = {}
    for width in sorted({r["width"] for r in rows}):
        for strategy in args.strategies.split(","):
            mine = [r for r in rows if r["width"] == width and r["strategy"] == strategy]
            if not mine:
                continue
            base = mine[0]["step_ms"]
            flat[f"{width}/{strategy}"] = max(r["n"] for r in mine if r["step_ms"] <= 2 * base)
    device = jax.devices()[0]
    table = _common.markdown_table(
        ["width", "strategy", "N", "ms per step", "net-steps/s", "GFLOP/s", "first call s"],
        [[r["width"], r["strategy"], r["n"], f"{r['step_ms']:.3f}",
          f"{r['net_steps_per_s']:,.0f}", f"{r['gflops']:.1f}", f"{r['first_call_s']:.1f}"]
         for r in rows])
    flat_lines = [f"- width {k.split('/')[0]}, {k.split('/')[1]}: flat (within 2x of N = 1) up "
                  f"to N = {v}" for k, v in flat.items()]
    best = {}
    for width in sorted({r["width"] for r in rows}):
        top = max(r["n"] for r in rows if r["width"] == width)
        at_top = [r for r in rows if r["width"] == width and r["n"] == top]
        best[width] = max(at_top, key=lambda r: r["net_steps_per_s"])["strategy"]
    markdown = "\n".join([
        "# Step time vs N on the device", "",
        f"`python benchmarks/device_scaling.py --widths {args.widths} --strategies "
        f"{args.strategies} --steps {args.steps}` on {device.device_kind} "
        f"({jax.default_backend()}, jax {jax.__version__}).", "", *flat_lines, "",
        "Fastest strategy at the largest N measured: " + ", ".join(
            f"width {w}: {s}" for w, s in best.items()) + ".", "", table])
    _common.write_results(args.out, "device_scaling", {"rows": rows, "flat_up_to": flat,
                                                      "best": best}, markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
