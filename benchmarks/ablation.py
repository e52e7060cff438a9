"""Where the engine's time goes: its chunk function with its additions taken away one by one.

The throughput workload (``benchmarks/throughput.py``: N MLPs ``2 -> width -> width -> 1``,
tanh, MSE, full batch 256, SGD, 500 steps, float32), timed like the engine there (the chunk
function ``runner.make_runner`` compiles, second call, best of ``--repeats``), in cumulative
variants, each in its own child process (one XLA device per core):

* ``engine``: the engine as ``jaxsym run`` runs it (about 30 record checkpoints);
* ``no-detect``: without the per-step break and convergence test
  (:func:`jaxsym.core.observers._detect` replaced by the identity);
* ``no-checkpoints``: and without the checkpoint records (``_checkpoint`` the identity: no
  loss, spread, s2/s1, functional metric or held-out loss during training);
* ``no-guards``: and without the divergence guard, the gradient-norm record and the freeze
  (``check_update`` passes the loss through, ``freeze`` keeps the new parameters): the bare
  optimizer step of :func:`jaxsym.core.train.make_step` (optax, exact products, padded layout)
  in the engine's scan;
* ``no-exact``: and with the plain textbook products (``train.kernel = "plain"``: natural
  layout, no padding; UNSAFE for symmetry, timed only);
* ``layout``: the record-free reference of ``throughput.py`` (the textbook step in the
  engine's ``shard_map`` + ``lax.map`` layout, no optax).

The differences between neighbouring rows are what each addition costs. Monkeypatching is done
in the child before anything is traced; nothing here changes the package.

Usage::

    python benchmarks/ablation.py                   # widths 16, 64, 256; ~5 min on 2 cores
    python benchmarks/ablation.py --widths 16 --repeats 3 --out /tmp/b
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import _common as common

#: the cumulative variants, in order
VARIANTS = ("engine", "no-detect", "no-checkpoints", "no-guards", "no-exact", "layout")
DEFAULT_N = {16: 512, 64: 64, 256: 8}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", default="16,64,256", help="comma-separated widths")
    parser.add_argument("--n", default="", metavar="W=N,...",
                        help=f"networks per width (default {DEFAULT_N})")
    parser.add_argument("--steps", type=int, default=500, help="SGD steps (default 500)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed calls after the warm-up, best taken (default 3)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated subset of {', '.join(VARIANTS)}")
    parser.add_argument("--out", type=Path, default=common.DEFAULT_RESULTS,
                        help="results directory (default benchmarks/results)")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds before a measurement is killed (default 600)")
    parser.add_argument("--worker", nargs=3, metavar=("VARIANT", "WIDTH", "N"),
                        help=argparse.SUPPRESS)  # internal: one measurement, JSON out
    args = parser.parse_args(argv)
    args.widths = [int(w) for w in args.widths.split(",") if w.strip()]
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if bad := [v for v in args.variants if v not in VARIANTS]:
        parser.error(f"--variants: unknown variant {bad[0]!r}; allowed: {', '.join(VARIANTS)}")
    try:
        args.n = {**DEFAULT_N, **{int(k): int(v) for k, v in
                                  (item.split("=") for item in args.n.split(",") if item)}}
    except ValueError:
        parser.error(f"--n: expected WIDTH=N,WIDTH=N,..., got {args.n!r}")
    return args


def _ablate(variant: str) -> str:
    """Patch the package for ``variant`` (and every variant before it); the kernel to use."""
    from jaxsym.core import observers

    level = VARIANTS.index(variant)
    if level >= 1:
        observers._detect = lambda state, t, params, loss_value, spec: state
    if level >= 2:
        observers._checkpoint = lambda state, t, params, loss_value, spec, evaluate: state
    if level >= 3:
        observers.check_update = lambda state, t, loss_value, grads, spec: (state, loss_value)
        observers.freeze = lambda diverged, old, new: new
    return "plain" if level >= 4 else "exact"


def measure(variant: str, width: int, n: int, steps: int, repeats: int) -> dict:
    """One variant's net-steps/s (in this process; call it in a fresh one)."""
    import throughput

    if variant == "layout":
        from jaxsym.engine import runner
        from jaxsym.study import config, tasks

        spec = common.first_spec(config.parse_study(common.study_toml(width, 1, steps=steps)))
        task = tasks.make_task("teacher_student", dim=common.DIM, teacher_width=2,
                               n_train=common.N_TRAIN, n_test=64)
        data = runner.task_data(task, "mse")
        return throughput.measure_reference("layout", width, n, steps,
                                            common.map_batch(spec, "map"), repeats,
                                            data["x_train"], data["y_train"])
    kernel = _ablate(variant)
    original = common.study_toml

    def study_toml(*a, **k):
        text = original(*a, **k)
        return text.replace('dtype = "float32"', f'dtype = "float32"\nkernel = "{kernel}"')

    common.study_toml = study_toml
    return throughput.measure_engine(width, n, "map", steps, repeats)


def main(argv=None) -> int:
    args = parse_args(argv)
    common.use_all_cores()
    if args.worker:
        variant, width, n = args.worker[0], int(args.worker[1]), int(args.worker[2])
        result = measure(variant, width, n, args.steps, args.repeats)
        print(json.dumps({"variant": variant, **result}))
        return 0
    started = time.perf_counter()
    machine = common.machine_info()
    print(common.machine_markdown(machine), flush=True)
    rows = {}
    for width in args.widths:
        rows[str(width)] = []
        for variant in args.variants:
            command = [sys.executable, str(Path(__file__).resolve()), "--worker", variant,
                       str(width), str(args.n[width]), "--steps", str(args.steps),
                       "--repeats", str(args.repeats)]
            r, error, _ = common.json_child(command, timeout=args.timeout,
                                            idle_timeout=args.timeout, prefix="jaxsym-ablation-")
            if error:
                r = {"variant": variant, "width": width, "error": error}
                print(f"width {width:4d} {variant:13s} {r['error']}", flush=True)
            else:
                print(f"width {width:4d} {variant:13s} {r['n']:5d} nets "
                      f"{r['net_steps_per_s']:12,.0f} net-steps/s  compile "
                      f"{r['compile_s']:.1f} s", flush=True)
            rows[str(width)].append(r)
    result = {"benchmark": "ablation", "machine": machine,
              "config": {"widths": args.widths, "steps": args.steps, "repeats": args.repeats,
                         "n": {str(w): args.n[w] for w in args.widths},
                         "variants": args.variants},
              "rows": rows, "wall_s": time.perf_counter() - started}
    json_path, md_path = common.write_results(args.out, "ablation", result, to_markdown(result))
    print(f"wrote {json_path} and {md_path}")
    return 0


def to_markdown(result: dict) -> str:
    table = []
    for width in result["config"]["widths"]:
        rows = result["rows"][str(width)]
        base = next((r["net_steps_per_s"] for r in rows if "net_steps_per_s" in r), None)
        previous = None
        for r in rows:
            if "error" in r:
                table.append([width, r["variant"], None, f"**{r['error']}**", None, None, None])
                continue
            us = 1e6 / r["net_steps_per_s"]
            table.append([width, r["variant"], r["n"], f"{r['net_steps_per_s']:,.0f}",
                          f"{us:.2f}", None if previous is None else f"{previous - us:+.2f}",
                          r["net_steps_per_s"] / base if base else None])
            previous = us
    headers = ["width", "variant", "N", "net-steps/s", "us per net-step",
               "us saved by this removal", "speed vs engine"]
    return (f"# Where the engine's time goes (cumulative ablation)\n\n"
            f"{common.machine_markdown(result['machine'])}\n\n"
            "Each row takes one more addition away (benchmarks/ablation.py: `no-detect` the "
            "per-step break/convergence test, `no-checkpoints` the checkpoint records, "
            "`no-guards` the divergence guard, gradient norms and freeze, `no-exact` the exact "
            "products (plain textbook kernels, padding off); `layout` is the textbook step "
            "without optax in the same shard_map + lax.map layout).\n\n"
            + common.markdown_table(headers, table)
            + f"\n\nTotal wall time: {result['wall_s']:.0f} s.\n")


if __name__ == "__main__":
    sys.exit(main())
