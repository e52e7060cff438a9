"""Peak memory of ``jaxsym run``: it grows with the chunk size, not with the number of networks.

For each (N, chunk size) this script writes a study config of N width-16 networks (MLP
2 -> 16 -> 16 -> 1, tanh, MSE, full batch 256, SGD; a grid of ``--grid`` sigma_b values x
N / grid seeds; 1000 steps; ~30 checkpoints), runs it in a fresh child process::

    python -m jaxsym run CONFIG --out TMPDIR --no-progress --chunk-size C

and records the child's peak resident set size. On Linux a child's ``ru_maxrss`` is floored by
the parent's RSS at the spawn (exec accounts the address space the child starts from); this
script never imports JAX, so its own RSS (recorded) stays far below the children's. The child's
``VmHWM`` (polled from ``/proc`` every 0.2 s) is recorded as a cross-check. A child that stops
using CPU for
``--idle-timeout`` seconds is killed and reported as deadlocked (with JAX 0.10.2 the engine's
chunk function has been seen to park every XLA CPU thread in LAPACK's SVD on a multi-device
CPU); ``--devices 1`` runs the children on one XLA device instead. The child's own ``rusage`` is
read with
``os.wait4`` (the per-child form of ``getrusage(RUSAGE_CHILDREN)``, whose ``ru_maxrss`` would be
the maximum over every child reaped so far). A child that only imports JAX and jaxsym gives the
fixed baseline. No FLOPs are counted here; for the FLOP formula of the workload see
``throughput.py`` (per network-step: 3 * 2 * 256 * (2 * 16 + 16**2 + 16)).

Usage::

    python benchmarks/memory.py            # N in {2000, 8000} x chunk in {256, 1024}, ~10 min
    python benchmarks/memory.py --quick    # N in {512, 2048} x chunk in {64, 256}, 100 steps
    python benchmarks/memory.py --full     # N up to 100000 (hours on 2 cores)
    python benchmarks/memory.py --n 2000,20000 --chunk-sizes 128,2048 --steps 200
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import _common as common

WIDTH = 16


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="smoke run: N 512, 2048; chunks 64, 256; 100 steps")
    mode.add_argument("--full", action="store_true",
                      help="N 2000, 8000, 32000, 100000 (long: hours on 2 cores)")
    parser.add_argument("--out", type=Path, default=None,
                        help="results directory (default benchmarks/results, --quick: "
                             "benchmarks/results/quick)")
    parser.add_argument("--n", default=None, help="networks per study, comma-separated")
    parser.add_argument("--chunk-sizes", default=None, help="chunk sizes, comma-separated")
    parser.add_argument("--steps", type=int, default=None, help="SGD steps (default 1000)")
    parser.add_argument("--grid", type=int, default=20, help="sigma_b grid values (default 20)")
    parser.add_argument("--checkpoints", type=int, default=30, help="record checkpoints")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds before a `jaxsym run` child is killed (default none)")
    parser.add_argument("--devices", type=int, default=None,
                        help="XLA CPU devices of the children (default: jaxsym's choice, one "
                             "per core)")
    parser.add_argument("--idle-timeout", type=float, default=60.0,
                        help="kill a child that uses < 0.5 CPU-s in this many seconds, i.e. is "
                             "deadlocked (default 60)")
    args = parser.parse_args(argv)
    n_default = ("512,2048" if args.quick else "2000,8000,32000,100000" if args.full
                 else "2000,8000")
    args.n = [int(v) for v in (args.n or n_default).split(",") if v]
    args.chunk_sizes = [int(v) for v in
                        (args.chunk_sizes or ("64,256" if args.quick else "256,1024")).split(",")
                        if v]
    args.steps = args.steps or (100 if args.quick else 1000)
    if args.out is None:
        args.out = common.DEFAULT_RESULTS / "quick" if args.quick else common.DEFAULT_RESULTS
    return args


def measure_run(n: int, chunk: int, args) -> dict:
    """``jaxsym run`` of an N-network study with chunk size ``chunk``, in a fresh child."""
    from jaxsym.study import config

    grid = min(args.grid, n)
    seeds = -(-n // grid)
    text = common.study_toml(WIDTH, seeds, steps=args.steps, checkpoints=args.checkpoints,
                             gradient_steps=12, n_sigma_b=grid, name=f"memory_n{n}_c{chunk}")
    study = config.parse_study(text)  # validate here: a bad config should not cost a child
    with tempfile.TemporaryDirectory(prefix="jaxsym-memory-") as tmp:
        tmp = Path(tmp)
        config_path = tmp / "study.toml"
        config_path.write_text(text)
        out = tmp / "run"
        child = common.run_child([sys.executable, "-m", "jaxsym", "run", str(config_path),
                                  "--out", str(out), "--no-progress", "--chunk-size", str(chunk)],
                                 tmp, env=child_env(args.devices), timeout=args.timeout,
                                 idle_timeout=args.idle_timeout)
        results_nc = out / "results.nc"
        results_nc_mib = results_nc.stat().st_size / 2**20 if results_nc.exists() else None
    lines = (child["stdout"].strip() or child["stderr"].strip()).splitlines()
    return {"n": study.n_networks, "n_requested": n, "grid_points": study.n_grid_points,
            "seeds": seeds, "chunk_size": chunk, "steps": args.steps,
            "idle_timeout": args.idle_timeout, "exit_status": child["exit_status"],
            "killed": child["killed"],
            "wall_s": child["wall_s"], "cpu_s": child["cpu_s"],
            "peak_rss_mib": child["peak_rss_mib"], "vm_hwm_mib": child["vm_hwm_mib"],
            "parent_rss_mib": child["parent_rss_mib"], "results_nc_mib": results_nc_mib,
            "nets_per_s": study.n_networks / child["wall_s"] if child["exit_status"] == 0
            else None, "last_line": lines[-1] if lines else ""}


def child_env(devices: int | None) -> dict:
    """Environment of a child: ``devices`` XLA CPU devices (None: one per core)."""
    env = dict(os.environ)
    flags = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                     if "xla_force_host_platform_device_count" not in f)
    count = devices or common.cores()
    env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()
    return env


def measure_baseline(devices: int | None) -> dict:
    """Peak RSS of a child that only starts JAX and imports jaxsym.engine.run and jaxsym.engine.results."""
    env = child_env(devices)
    code = ("import jax, jax.numpy as jnp, jaxsym.engine.run, jaxsym.engine.results; "
            "jnp.ones(8).sum().block_until_ready()")
    with tempfile.TemporaryDirectory(prefix="jaxsym-memory-") as tmp:
        child = common.run_child([sys.executable, "-c", code], Path(tmp), env=env, timeout=300)
    return {k: child[k] for k in ("exit_status", "wall_s", "cpu_s", "peak_rss_mib",
                                  "vm_hwm_mib", "parent_rss_mib")}


def _status(row: dict) -> str:
    if row["killed"] == "hung":
        return f"KILLED: no CPU use for {row['idle_timeout']:.0f} s (deadlock)"
    if row["killed"]:
        return f"KILLED: timeout after {row['wall_s']:.0f} s"
    return "ok" if row["exit_status"] == 0 else f"FAILED: exit {row['exit_status']}"


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    machine = common.machine_info()
    machine["cores"] = common.cores()
    print(common.machine_markdown(machine), flush=True)
    baseline = measure_baseline(args.devices)
    print(f"baseline (import jax + jaxsym): peak RSS {baseline['peak_rss_mib']:.0f} MiB",
          flush=True)
    rows = []
    for n in args.n:
        for chunk in args.chunk_sizes:
            row = measure_run(n, chunk, args)
            rows.append(row)
            rate = (f"{row['nets_per_s']:7.1f} nets/s" if row["nets_per_s"] else
                    f"{_status(row)}: {row['last_line'][-150:]}" if not row["killed"] else
                    f"{_status(row)} ({row['cpu_s']:.0f} CPU-s)")
            print(f"N {row['n']:7d}  chunk {chunk:5d}  peak RSS {row['peak_rss_mib']:7.0f} MiB  "
                  f"wall {row['wall_s']:7.1f} s  {rate}", flush=True)
    result = {"benchmark": "memory", "machine": machine,
              "config": {"width": WIDTH, "depth": common.DEPTH, "steps": args.steps,
                         "grid": args.grid, "checkpoints": args.checkpoints,
                         "n": args.n, "chunk_sizes": args.chunk_sizes,
                         "quick": args.quick, "full": args.full, "timeout_s": args.timeout,
                         "idle_timeout_s": args.idle_timeout,
                         "devices": args.devices or common.cores()},
              "baseline": baseline, "rows": rows, "parent_rss_mib": common.peak_rss_mib(),
              "wall_s": time.perf_counter() - started}
    table = common.markdown_table(
        ["N networks", "chunk size", "peak RSS MiB", "VmHWM MiB", "over baseline MiB", "wall s",
         "nets/s", "results.nc MiB", "status"],
        [[r["n"], r["chunk_size"], r["peak_rss_mib"], r["vm_hwm_mib"],
          r["peak_rss_mib"] - baseline["peak_rss_mib"], r["wall_s"], r["nets_per_s"],
          r["results_nc_mib"], _status(r)] for r in rows])
    mode = "quick" if args.quick else "full" if args.full else "default"
    markdown = (f"# Peak memory of `jaxsym run` ({mode} run)\n\n"
                f"{common.machine_markdown(machine)}\n\n"
                f"Width-{WIDTH} MLPs (depth {common.DEPTH}), {args.steps} steps, "
                f"{args.checkpoints} checkpoints, sigma_b grid x seeds, "
                f"{args.devices or common.cores()} XLA CPU device(s); one fresh "
                f"`python -m jaxsym run` child per row, peak RSS from `os.wait4`. Baseline "
                f"(a child importing JAX and jaxsym): {baseline['peak_rss_mib']:.0f} MiB; this "
                f"script's own RSS: {common.peak_rss_mib():.0f} MiB.\n\n"
                f"{table}\n")
    json_path, md_path = common.write_results(args.out, "memory", result, markdown)
    print(f"wrote {json_path} and {md_path}")
    failed = sum(r["exit_status"] != 0 for r in rows)
    if failed:
        print(f"{failed} of {len(rows)} runs did not finish (see the status column)")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
