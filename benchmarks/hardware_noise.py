"""Hardware noise per kernel family, in one command: the hardware_noise experiment under each
setting of the machine's backend. On a GPU: XLA's default and deterministic reductions and each
float32 matmul precision (TF32, bfloat16 passes); on a CPU: the four CPU kernel families of
:data:`jaxsym.core.exactness.KERNEL_FAMILIES` (YNNPACK, XLA's own at the native ISA, AVX2,
SSE4.2).

    python benchmarks/hardware_noise.py                 # GPU machine: OUT = results/gpu_noise
    python benchmarks/hardware_noise.py --device cpu    # here: OUT = results/hardware_noise_cpu
    python benchmarks/hardware_noise.py --dry-run       # anywhere: the GPU plan

Each setting (:data:`SETTINGS`) trains ``experiments/hardware_noise.toml`` (width 17, constant
W, sigma_b = 0, exact and plain kernels, tanh and relu) in float32 in its own process, with
``--seeds`` replicas per data draw (same init, data and arithmetic: on a deterministic device they
end bit for bit alike, so "replicas differ" counts the draws a non-deterministic reduction made
diverge), then renders that run's report into ``OUT/SETTING/REPORT.md`` and collects every
setting's hardware-noise table in ``OUT/SUMMARY.md``. Settings whose process fails (an XLA flag
this jaxlib does not know, say) are listed there with their error and skipped.

``--device gpu`` (the default) without a GPU refuses (exit 2); ``--device cpu`` runs anywhere.

What to expect (hypotheses, not results: no GPU run is committed yet). The exact rows: twins may
differ where XLA's GPU reductions (the bias gradient's column sum, split-K matmuls) use atomics,
since their order differs per unit; with ``--xla_gpu_deterministic_ops=true`` they should not,
and every draw's replicas should end alike. The plain rows: TF32 and bfloat16 passes round at
u = 4.9e-4 and 3.9e-3 instead of 6e-8, so twins that differ should break sooner (larger
effective sigma_b) than at "highest" precision.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

#: the CPU settings: the kernel families of jaxsym.core.exactness (XLA_FLAGS each), and the
#: machine's own kernels under the vmap strategy (one batched product for all networks)
CPU_FAMILIES = {
    "native": ("the machine's own kernels (YNNPACK, chosen by the CPU's features)", ""),
    "xla-native": ("XLA's own and Eigen's kernels at the native ISA",
                   "--xla_cpu_experimental_ynn_fusion_type="),
    "xla-avx2": ("XLA's own kernels limited to AVX2",
                 "--xla_cpu_experimental_ynn_fusion_type= --xla_cpu_max_isa=AVX2"),
    "xla-sse4.2": ("XLA's own kernels limited to SSE4.2",
                   "--xla_cpu_experimental_ynn_fusion_type= --xla_cpu_max_isa=SSE4_2"),
    "native-vmap": ("the machine's own kernels, vmap strategy (all networks in one batched "
                    "product)", ""),
}
#: settings that train with another strategy than the device's default
STRATEGY = {"native-vmap": "vmap"}

#: device -> setting name -> (description, environment variables set for its process)
SETTINGS = {"cpu": {name: (text, {"XLA_FLAGS": flags} if flags else {})
                    for name, (text, flags) in CPU_FAMILIES.items()}}
SETTINGS["gpu"] = {
    "default": ("XLA's defaults (float32 dots may run as TF32 on Ampere and newer)", {}),
    "highest": ("float32 dots at full precision",
                {"JAX_DEFAULT_MATMUL_PRECISION": "highest"}),
    "deterministic": ("full precision, deterministic reductions (no atomics)",
                      {"JAX_DEFAULT_MATMUL_PRECISION": "highest",
                       "XLA_FLAGS": "--xla_gpu_deterministic_ops=true"}),
    "tf32": ("float32 dots as TF32 passes",
             {"JAX_DEFAULT_MATMUL_PRECISION": "tensorfloat32"}),
    "bf16": ("float32 dots as one bfloat16 pass", {"JAX_DEFAULT_MATMUL_PRECISION": "bfloat16"}),
}
#: where each device's results go by default (under benchmarks/results)
OUT = {"gpu": "gpu_noise", "cpu": "hardware_noise_cpu"}


def commands(setting: str, out: Path, runs: Path, args) -> list[list[str]]:
    """The two commands of one setting: train, then render its report."""
    run_dir = runs / setting
    train = [sys.executable, "-m", "jaxsym", "run", "hardware_noise", "--preset",
             args.preset, "--set", f"seeds.count={args.seeds}", "--set",
             f"task.draws={args.draws}", "--set", "train.dtype=float32", "--out", str(run_dir),
             "--strategy", STRATEGY.get(setting, "vmap" if args.device == "gpu" else "map"),
             "--chunk-size", "4096",
             "--no-progress", "--yes", "--force"]
    if args.steps:
        train += ["--steps", str(args.steps)]
    report = [sys.executable, "-m", "jaxsym", "report", str(run_dir), "--figures",
              str(out / setting)]
    return [train, report]


def _section(report: Path, setting: str) -> str:
    """The hardware-noise section of a REPORT.md, up to its setup, without the study's
    description, its figure linked from the summary's folder."""
    text = report.read_text()
    start = text.find("## Hardware noise")
    end = text.find("### Setup", start)
    if start < 0:
        return "(no hardware-noise section)"
    lines = [line.replace("](hardware_noise.png)", f"]({setting}/hardware_noise.png)")
             for line in text[start:end].strip().splitlines()[1:]
             if not line.startswith("*Study:*")]
    return "\n".join(lines).strip()


def _same_networks(runs: Path, first: str, setting: str) -> str:
    """Network by network against ``first``: of the plain kernel's networks, how many broke
    at the same step (and how many end with bitwise-equal final losses); same for exact."""
    import xarray as xr

    try:
        a, b = (xr.open_dataset(runs / name / "results.nc") for name in (first, setting))
    except (OSError, ValueError):
        return ""
    parts = []
    with a, b:
        for kernel in [str(k) for k in a.kernel.values]:
            x, y = a.sel(kernel=kernel), b.sel(kernel=kernel)
            times = int((x.time_to_break.values == y.time_to_break.values).sum())
            bits = int((x.final_loss.values == y.final_loss.values).sum())
            parts.append(f"{kernel}: {times} of {x.time_to_break.size} networks break at the "
                         f"same step as under {first} ({bits} with bitwise-equal final loss)")
    return "Network by network: " + "; ".join(parts) + "."


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=tuple(SETTINGS), default="gpu")
    parser.add_argument("--out", type=Path, default=None,
                        help="default: benchmarks/results/gpu_noise or hardware_noise_cpu")
    parser.add_argument("--runs", type=Path, default=None,
                        help="parent of the run directories (default: runs/ + the out name)")
    parser.add_argument("--settings", default="",
                        help="comma-separated (default: all of the device's): "
                             + "; ".join(f"{d}: {', '.join(s)}" for d, s in SETTINGS.items()))
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--seeds", type=int, default=8, help="replicas per data draw")
    parser.add_argument("--draws", type=int, default=16, help="data draws")
    parser.add_argument("--steps", type=int, default=0, help="override train.steps (0: keep)")
    parser.add_argument("--report-only", action="store_true",
                        help="re-render the reports and the summary from the run directories "
                             "(after an analysis change); train nothing")
    parser.add_argument("--dry-run", action="store_true",
                        help="print every setting's commands and environment; run nothing")
    args = parser.parse_args(argv)
    settings = SETTINGS[args.device]
    args.out = args.out or _common.DEFAULT_RESULTS / OUT[args.device]
    args.runs = args.runs or Path("runs") / OUT[args.device]
    chosen = [s.strip() for s in args.settings.split(",") if s.strip()] or list(settings)
    unknown = [s for s in chosen if s not in settings]
    if unknown:
        print(f"hardware_noise: --settings: unknown {', '.join(unknown)}; allowed on "
              f"{args.device}: {', '.join(settings)}", file=sys.stderr)
        return 2
    if args.seeds < 2 or args.draws < 1:
        print("hardware_noise: --seeds must be >= 2 (replicas expose non-determinism) and "
              "--draws >= 1", file=sys.stderr)
        return 2
    if args.dry_run:
        for setting in chosen:
            description, env = settings[setting]
            print(f"# {setting}: {description}")
            for command in commands(setting, args.out, args.runs, args):
                print(" ".join([f"{k}={shlex.quote(v)}" for k, v in env.items()]
                               + [shlex.quote(c) for c in command]))
        return 0
    import jax

    if args.device == "gpu" and jax.default_backend() != "gpu":
        print(f"hardware_noise: no GPU here (jax backend {jax.default_backend()!r}); run it on a GPU "
              "machine, or --dry-run to see the plan", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    from jaxsym.engine.provenance import machine_provenance

    machine = machine_provenance()
    where = (jax.devices()[0].device_kind if args.device == "gpu"
             else f"{machine['cpu_model']} ({machine['cpu_isa']})")
    summary = [f"# Hardware noise on {where}", "",
               f"`python benchmarks/hardware_noise.py {' '.join(argv or sys.argv[1:])}`; jax "
               f"{jax.__version__}. One section per setting; each setting's full report "
               "(figure, setup, machine row) is in its own folder.", ""]
    status = {}
    for setting in chosen:
        description, env = settings[setting]
        start = time.perf_counter()
        failed = None
        steps = commands(setting, args.out, args.runs, args)
        for command in steps[1:] if args.report_only else steps:
            done = subprocess.run(command, env={**os.environ, **env}, capture_output=True,
                                  text=True)
            if done.returncode != 0:
                failed = (done.stderr.strip().splitlines() or ["exit status "
                                                               f"{done.returncode}"])[-1]
                break
        status[setting] = {"seconds": round(time.perf_counter() - start, 1),
                           "error": failed, "env": env}
        summary += [f"## {setting}: {description}", "",
                    f"Environment: {env or 'none'}; {status[setting]['seconds']} s.", ""]
        same = "" if setting == chosen[0] else _same_networks(args.runs, chosen[0], setting)
        summary += ([f"Failed: {failed}", ""] if failed else
                    [_section(args.out / setting / "REPORT.md", setting), ""]
                    + ([same, ""] if same else []))
        print(f"{setting}: {'failed: ' + failed if failed else 'done'} "
              f"({status[setting]['seconds']} s)")
    (args.out / "SUMMARY.md").write_text("\n".join(summary))
    (args.out / "status.json").write_text(json.dumps(status, indent=1))
    return 0 if not all(s["error"] for s in status.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
