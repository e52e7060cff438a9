"""Throughput of the jaxsym sweep engine against the machine's GEMM peak and two baselines.

Workload W(N, width): N independent MLPs ``2 -> width -> width -> 1`` (depth 3), tanh, MSE, the
same full batch of 256 samples (teacher_student task, dim 2, n_train 256), plain SGD (lr 0.05),
500 steps in ``lax.scan``. Useful FLOPs per network-step (forward + backward = 3 x forward,
biases and activations not counted)::

    FLOPs = 3 * 2 * 256 * (2 * width + width**2 + width)

What one run measures (and writes to ``OUT/throughput.json`` and ``OUT/throughput.md``):

1. GEMM peak: a 4096 x 4096 float32 ``jax.jit`` matmul, best of several, in GFLOP/s (XLA's CPU
   matmul uses the intra-op thread pool, i.e. all cores); NumPy's BLAS for reference.
2. Engine: the compiled function ``jaxsym.engine.run.run_study`` calls -- ``runner.make_runner`` on the
   study's static group, one chunk of N networks sharded over one XLA CPU device per core --
   timed on a second call after a warm-up call (compile time = first call - second call).
   Network-steps/s, GFLOP/s and the fraction of the GEMM peak. The engine also records metrics
   every step (divergence checks, rank-two diversity, gradient norms, ~30 checkpoints); those
   FLOPs are not counted. Strategy "map" (the CPU default) with the engine's own map batch
   (``runner.nets_per_map_step``) and with batch 1 (``--map-batch`` to choose), and "vmap" on
   request. Each engine measurement runs in a child process, killed when it stops using CPU:
   with JAX 0.10.2 on a 2-device CPU the chunk function has deadlocked (every XLA intra-op
   thread parked in LAPACK's batched SVD, ``jax::ParallelBatchMap``) at widths 16 and 64 when
   networks were vmapped ("vmap", or "map" with a batch > 1); the row then says "killed".
3. Naive baseline: the plain textbook loop in a fresh process with ONE XLA device (whose
   intra-op pool uses every core): a Python loop over networks, each trained by ONE jitted
   function (init + ``lax.scan`` of the SGD steps, weights ``(n_out, n_in)``, no padding, no
   metrics), on a subset of networks; rate extrapolated.
4. torch.func baseline (in its own process): ``stack_module_state`` + ``vmap(grad(...))`` over
   the same MLPs and batch, the same number of steps, 2 threads; skipped (null) when PyTorch is
   not installed (``python -m pip install torch==2.13.0`` here, or the ``bench`` extra).
5. Record-free references (``--references``), each in a child process with the engine's
   device setup: the textbook step batched like the engine (``shard_map`` + ``lax.map`` of
   vmapped blocks, no records: what the engine's additions cost) and a sharded ``jax.vmap`` of
   it (what a JAX user would write); see :func:`measure_reference`.
6. Peak RSS at the end: of this process (GEMM, baselines; ``getrusage``) and the largest of
   the engine's child processes (their ``VmHWM``: a child's ``ru_maxrss`` is floored by this
   process's RSS at the spawn on Linux).

Usage::

    python benchmarks/throughput.py            # ~5 min on 2 cores
    python benchmarks/throughput.py --quick    # ~1 min smoke run (writes to results/quick/)
    python benchmarks/throughput.py --map-batch auto,1,4 --strategies map,vmap --out /tmp/b
    python benchmarks/throughput.py --n 16=2048,64=256 --widths 16,64
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import _common as common

#: default networks per width (each engine call takes a few seconds on 2 cores)
DEFAULT_N = {16: 512, 64: 64, 256: 8}
QUICK_N = {16: 64, 64: 16, 256: 2}
#: networks the naive loop trains per width (its rate is extrapolated from these)
DEFAULT_NAIVE_N = {16: 64, 64: 32, 256: 8}
#: the record-free references (measure_reference)
REFERENCES = ("layout", "vmap")
QUICK_NAIVE_N = {16: 8, 64: 4, 256: 2}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="~1-minute smoke run: few networks, fewer repeats")
    parser.add_argument("--out", type=Path, default=None,
                        help="results directory (default benchmarks/results, --quick: "
                             "benchmarks/results/quick)")
    parser.add_argument("--widths", default="16,64,256", help="comma-separated widths")
    parser.add_argument("--n", default="", metavar="W=N,...",
                        help=f"networks per width for the engine (default {DEFAULT_N})")
    parser.add_argument("--naive-n", default="", metavar="W=N,...",
                        help=f"networks the naive loop trains (default {DEFAULT_NAIVE_N})")
    parser.add_argument("--steps", type=int, default=500, help="SGD steps (default 500)")
    parser.add_argument("--checkpoints", default="30",
                        help="record checkpoints of the engine's study, comma-separated: each "
                             "value is a separate engine row (default 30, the engine's usual "
                             "record schedule; e.g. 30,2 shows what the checkpoint metrics cost)")
    parser.add_argument("--strategies", default="map",
                        help="engine strategies, comma-separated: map, vmap (default map)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed engine calls after the warm-up, best taken (default 1)")
    parser.add_argument("--gemm-repeats", type=int, default=None,
                        help="timed GEMMs, best taken (default 5, --quick 3)")
    parser.add_argument("--map-batch", default="auto,1",
                        help="networks per lax.map step for strategy map, comma-separated: "
                             "auto (the engine's choice) and/or integers (default auto,1)")
    parser.add_argument("--engine-timeout", type=float, default=None,
                        help="seconds before an engine measurement is killed (default 600, "
                             "--quick 120)")
    parser.add_argument("--idle-timeout", type=float, default=None,
                        help="kill an engine measurement that uses < 0.5 CPU-s in this many "
                             "seconds, i.e. is deadlocked (default 60, --quick 30)")
    parser.add_argument("--retries", type=int, default=0,
                        help="new attempts after an engine measurement is killed (default 0)")
    parser.add_argument("--references", default="layout,vmap",
                        help="record-free references timed beside the engine, comma-separated: "
                             "layout (the plain step in the engine's shard_map + lax.map "
                             "layout), vmap (jax.vmap of the textbook step sharded over the "
                             "devices), or none (default layout,vmap)")
    parser.add_argument("--worker", nargs=3, metavar=("WIDTH", "N", "STRATEGY"),
                        help=argparse.SUPPRESS)  # internal: one engine measurement, JSON out
    parser.add_argument("--reference-worker", nargs=3, metavar=("KIND", "WIDTH", "N"),
                        help=argparse.SUPPRESS)  # internal: one reference measurement
    parser.add_argument("--naive-worker", nargs=2, metavar=("WIDTH", "N"),
                        help=argparse.SUPPRESS)  # internal: the naive loop on 1 device
    parser.add_argument("--torch-worker", nargs=2, metavar=("WIDTH", "N"),
                        help=argparse.SUPPRESS)  # internal: the torch.func baseline
    args = parser.parse_args(argv)
    args.widths = [int(w) for w in args.widths.split(",") if w]
    try:
        args.checkpoints = [int(c) for c in args.checkpoints.split(",") if c.strip()]
    except ValueError:
        parser.error(f"--checkpoints: expected integers, got {args.checkpoints!r}")
    if not args.checkpoints or min(args.checkpoints) < 1:
        parser.error("--checkpoints: expected integers >= 1")
    args.strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if bad := [s for s in args.strategies if s not in ("map", "vmap")]:
        parser.error(f"unknown strategy {bad[0]!r}; allowed: map, vmap")
    args.references = [r.strip() for r in args.references.split(",")
                       if r.strip() and r.strip() != "none"]
    if bad := [r for r in args.references if r not in REFERENCES]:
        parser.error(f"--references: unknown reference {bad[0]!r}; allowed: "
                     f"{', '.join(REFERENCES)}, none")
    args.n = {**(QUICK_N if args.quick else DEFAULT_N), **_width_map(parser, args.n)}
    args.naive_n = {**(QUICK_NAIVE_N if args.quick else DEFAULT_NAIVE_N),
                    **_width_map(parser, args.naive_n)}
    for width in args.widths:
        args.n.setdefault(width, max(2, 8192 // width))
        args.naive_n.setdefault(width, max(2, 1024 // width))
    args.repeats = args.repeats or 1
    args.gemm_repeats = args.gemm_repeats or (3 if args.quick else 5)
    args.engine_timeout = args.engine_timeout or (120.0 if args.quick else 600.0)
    args.idle_timeout = args.idle_timeout or (30.0 if args.quick else 60.0)
    try:
        args.map_batch = [None if b.strip() == "auto" else int(b)
                          for b in args.map_batch.split(",") if b.strip()]
    except ValueError:
        parser.error(f"--map-batch: expected auto or integers, got {args.map_batch!r}")
    if args.out is None:
        args.out = common.DEFAULT_RESULTS / "quick" if args.quick else common.DEFAULT_RESULTS
    return args


def _width_map(parser, text: str) -> dict[int, int]:
    try:
        return {int(k): int(v) for k, v in (item.split("=") for item in text.split(",") if item)}
    except ValueError:
        parser.error(f"expected WIDTH=N,WIDTH=N,..., got {text!r}")


# ---------------------------------------------------------------------------------------------
# 1. GEMM peak


def gemm_peak(repeats: int, n: int = 4096) -> dict:
    """Best-of-``repeats`` GFLOP/s of an ``n x n`` float32 matmul: JAX (jit) and NumPy."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    matmul = jax.jit(jnp.matmul)
    matmul(a, b).block_until_ready()
    jax_s = min(_timed(lambda: matmul(a, b).block_until_ready()) for _ in range(repeats))
    a_np, b_np = np.asarray(a), np.asarray(b)
    a_np @ b_np
    numpy_s = min(_timed(lambda: a_np @ b_np) for _ in range(max(2, repeats - 2)))
    flops = 2 * n**3
    return {"size": n, "dtype": "float32", "repeats": repeats, "jax_seconds": jax_s,
            "gflops": flops / jax_s / 1e9, "numpy_gflops": flops / numpy_s / 1e9}


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ---------------------------------------------------------------------------------------------
# 2. the engine


def measure_engine(width: int, n: int, strategy: str, steps: int, repeats: int,
                   batch: int | None = None, checkpoints: int = 30) -> dict:
    """Time the engine's compiled chunk function on one chunk of (about) ``n`` networks.

    ``n`` is rounded up to a multiple of devices x map batch, so the chunk has no padding.
    ``batch``: networks per ``lax.map`` step ("map"); None = the engine's own choice.
    """
    import jax
    import numpy as np

    from jaxsym.study import config

    spec = common.first_spec(config.parse_study(common.study_toml(width, n, steps=steps,
                                                                  checkpoints=checkpoints)))
    batch = common.map_batch(spec, strategy) if batch is None else batch
    step = jax.local_device_count() * batch
    n = -(-n // step) * step
    study = config.parse_study(common.study_toml(width, n, steps=steps,
                                                 checkpoints=checkpoints))
    chunk = common.engine_chunk(study, n, strategy, batch)
    first = _timed(lambda: jax.block_until_ready(chunk.runner(*chunk.args)))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        records = jax.block_until_ready(chunk.runner(*chunk.args))
        times.append(time.perf_counter() - start)
    run_s = min(times)
    return {"width": width, "n": n, "strategy": strategy, "map_batch": chunk.batch,
            "steps": steps, "chunk_length": chunk.length,
            "checkpoints": len(chunk.spec.checkpoints), "first_call_s": first, "run_s": run_s,
            "run_times_s": times, "compile_s": max(first - run_s, 0.0),
            "net_steps_per_s": n * steps / run_s, "nets_per_s": n / run_s,
            "final_loss_mean": float(np.mean(np.asarray(records["final_loss"])[:n])),
            "diverged": int(np.sum(np.asarray(records["diverged"])[:n]))}


def engine_variants(args, width: int) -> list[tuple[str, int, bool]]:
    """``(strategy, map batch, is the engine's own choice)`` to measure at ``width``, "auto"
    resolved to the batch ``run_study`` would use ("vmap" has no map batch: 1)."""
    from jaxsym.study import config

    spec = common.first_spec(config.parse_study(common.study_toml(width, 1, steps=args.steps)))
    variants = []
    for strategy in args.strategies:
        default = common.map_batch(spec, strategy)
        for batch in (args.map_batch if strategy == "map" else [None]):
            batch = default if batch is None else batch
            if all((strategy, batch) != v[:2] for v in variants):
                variants.append((strategy, batch, batch == default))
    return variants


def measure_engine_in_child(width: int, n: int, strategy: str, batch: int | None, args,
                            checkpoints: int = 30) -> dict:
    """:func:`measure_engine` in a child process; a hung child (no CPU use for
    ``args.idle_timeout`` s) or a slow one (``args.engine_timeout`` s) is killed and tried again
    up to ``args.retries`` times. The result records the killed attempts."""

    command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(width), str(n),
               strategy, "--map-batch", "auto" if batch is None else str(batch),
               "--steps", str(args.steps), "--repeats", str(args.repeats),
               "--checkpoints", str(checkpoints)]
    failed = {"width": width, "n": n, "strategy": strategy, "map_batch": batch,
              "steps": args.steps, "checkpoints_requested": checkpoints}
    killed = []
    for _ in range(args.retries + 1):
        result, error, child = common.json_child(command, timeout=args.engine_timeout,
                                                 idle_timeout=args.idle_timeout,
                                                 prefix="jaxsym-throughput-")
        if child["killed"]:
            killed.append(f"{child['killed']} after {child['wall_s']:.0f} s")
            continue
        if error:
            return {**failed, "killed_attempts": killed, "error": error}
        return {**result, "killed_attempts": killed, "child_peak_rss_mib": child["vm_hwm_mib"]}
    return {**failed, "killed_attempts": killed, "error": "killed: " + "; ".join(killed)}


def measure_reference_in_child(kind: str, width: int, n: int, batch: int, args) -> dict:
    """:func:`measure_reference` in a child process with the engine's device setup (one XLA
    device per core), killed like an engine measurement when it hangs or runs too long."""

    command = [sys.executable, str(Path(__file__).resolve()), "--reference-worker", kind,
               str(width), str(n), "--map-batch", str(batch), "--steps", str(args.steps),
               "--repeats", str(args.repeats)]
    result, error, _ = common.json_child(command, timeout=args.engine_timeout,
                                         idle_timeout=args.idle_timeout,
                                         prefix="jaxsym-throughput-")
    return result if error is None else {"kind": kind, "width": width, "n": n, "error": error}


# ---------------------------------------------------------------------------------------------
# 3. naive baseline: a Python loop, one jitted function per network


def _mlp_sizes(width: int) -> tuple[int, ...]:
    return (common.DIM,) + (width,) * (common.DEPTH - 1) + (1,)


def _baseline_in_child(option: str, width: int, n: int, steps: int) -> dict:
    """Run this script's ``option`` worker (``--naive-worker`` / ``--torch-worker``) in a fresh
    process and return its JSON. Baselines run in their own processes: PyTorch's OpenMP
    threads keep spinning after their work and slowed every later engine measurement by up to
    5x when the torch baseline ran in this process."""
    import os
    import subprocess

    flags = " ".join(f for f in os.environ.get("XLA_FLAGS", "").split()
                     if "xla_force_host_platform_device_count" not in f)
    env = {**os.environ, "XLA_FLAGS": flags}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), option, str(width),
                          str(n), "--steps", str(steps)], env=env, capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else
                           f"exit {out.returncode}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_naive_in_child(width: int, n: int, steps: int) -> dict:
    """:func:`measure_naive` in a fresh process with ONE XLA CPU device (XLA's default: its
    intra-op thread pool uses every core), as a user's textbook loop runs, not inside this
    process's one-device-per-core setup."""
    return _baseline_in_child("--naive-worker", width, n, steps)


def textbook_train(width: int, steps: int):
    """``train_one(seed, x, y) -> final loss``: ONE network, the plain textbook loop (Glorot-normal
    weights ``(n_out, n_in)``, zero biases, ``a @ W.T + b``, tanh, MSE, ``steps`` plain SGD steps in
    ``lax.scan``; no padding, no records, no guards). Unjitted: the callers batch and jit it."""
    import jax
    import jax.numpy as jnp

    sizes = _mlp_sizes(width)

    def init(key):  # Glorot-normal weights, zero biases (the engine's glorot, sigma_b = 0)
        layers = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            std = jnp.sqrt(2.0 / (fan_in + fan_out))
            w = std * jax.random.normal(jax.random.fold_in(key, i), (fan_out, fan_in))
            layers.append((w, jnp.zeros((fan_out,))))
        return layers

    def loss(layers, x, y):
        a = x
        for w, b in layers[:-1]:
            a = jnp.tanh(a @ w.T + b)
        w, b = layers[-1]
        return 0.5 * jnp.mean((a @ w.T + b - y) ** 2)

    def train_one(seed, x, y):
        def step(layers, _):
            grads = jax.grad(loss)(layers, x, y)
            return jax.tree.map(lambda p, g: p - common.LEARNING_RATE * g, layers, grads), None

        layers, _ = jax.lax.scan(step, init(jax.random.key(seed)), None, length=steps)
        return loss(layers, x, y)

    return train_one


def measure_naive(width: int, n: int, steps: int, x, y) -> dict:
    """Train ``n`` networks one after another with one jitted init + scan function each: the
    plain textbook loop (:func:`textbook_train`)."""
    import jax
    import numpy as np

    train_one = jax.jit(textbook_train(width, steps))
    first = _timed(lambda: train_one(0, x, y).block_until_ready())
    start = time.perf_counter()
    losses = [train_one(i, x, y) for i in range(n)]
    jax.block_until_ready(losses)
    run_s = time.perf_counter() - start
    return {"width": width, "n": n, "steps": steps, "first_call_s": first, "run_s": run_s,
            "net_steps_per_s": n * steps / run_s, "nets_per_s": n / run_s,
            "final_loss_mean": float(np.mean(np.asarray(losses)))}


# ---------------------------------------------------------------------------------------------
# 3b. what the engine wraps, and what a JAX user would write: two references without records


def measure_reference(kind: str, width: int, n: int, steps: int, batch: int, repeats: int,
                      x, y) -> dict:
    """Time ``n`` textbook networks (:func:`textbook_train`) trained together, in this process's
    one-XLA-device-per-core setup, the second call after a warm-up (compile = first - best).

    ``kind`` "layout": the engine's own batching around the plain step -- ``shard_map`` over a
    1-D mesh of the devices, ``lax.map`` over each device's networks ``batch`` at a time
    (vmapped), as :func:`jaxsym.engine.runner.make_runner` does -- without the engine's records,
    break test, exactness padding and guards: the ceiling of what the engine's layout gives.
    ``kind`` "vmap": ``jax.jit(jax.vmap(train_one))`` with the network axis sharded over the
    devices (``NamedSharding``): what a JAX user would write.
    """
    import jax
    import numpy as np

    train_one = textbook_train(width, steps)
    devices = jax.local_devices()
    step = len(devices) * (batch if kind == "layout" else 1)
    n = -(-n // step) * step
    mesh = jax.make_mesh((len(devices),), ("nets",), devices=tuple(devices))
    nets = jax.P("nets")
    batched = jax.vmap(train_one, in_axes=(0, None, None))
    if kind == "layout":
        def local(seeds, x, y):
            blocks = seeds.reshape((-1, batch))
            return jax.lax.map(lambda s: batched(s, x, y), blocks).reshape(-1)

        fn = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(nets, jax.P(), jax.P()),
                                   out_specs=nets, check_vma=False))
    elif kind == "vmap":
        fn = jax.jit(batched)
    else:
        raise ValueError(f"unknown reference {kind!r}; allowed: layout, vmap")
    seeds = jax.device_put(np.arange(n, dtype=np.uint32), jax.NamedSharding(mesh, nets))
    with jax.set_mesh(mesh):  # the mesh the sharded vmap's key arrays are partitioned over
        first = _timed(lambda: fn(seeds, x, y).block_until_ready())
        times = [_timed(lambda: fn(seeds, x, y).block_until_ready()) for _ in range(repeats)]
        out = fn(seeds, x, y)
    losses = np.asarray(out)
    run_s = min(times)
    return {"kind": kind, "width": width, "n": n, "steps": steps,
            "map_batch": batch if kind == "layout" else None, "devices": len(devices),
            "output_devices": len(out.sharding.device_set),
            "first_call_s": first, "run_s": run_s, "run_times_s": times,
            "compile_s": max(first - run_s, 0.0), "net_steps_per_s": n * steps / run_s,
            "nets_per_s": n / run_s, "final_loss_mean": float(np.mean(losses))}


# ---------------------------------------------------------------------------------------------
# 4. torch.func baseline


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def measure_torch(width: int, n: int, steps: int, x, y) -> dict:
    """``n`` stacked MLPs trained together with ``torch.func.vmap(grad(...))``, float32, CPU."""
    import copy

    import numpy as np
    import torch
    from torch.func import functional_call, grad, stack_module_state, vmap

    torch.set_num_threads(common.cores())
    sizes = _mlp_sizes(width)

    def make():
        layers = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            linear = torch.nn.Linear(fan_in, fan_out)
            torch.nn.init.xavier_normal_(linear.weight)
            torch.nn.init.zeros_(linear.bias)
            layers += [linear] + ([torch.nn.Tanh()] if i < len(sizes) - 2 else [])
        return torch.nn.Sequential(*layers)

    torch.manual_seed(0)
    models = [make() for _ in range(n)]
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    xt = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.float32)

    def loss(p, b, x, y):
        return 0.5 * torch.mean((functional_call(base, (p, b), (x,)) - y) ** 2)

    batched_grad = vmap(grad(loss), in_dims=(0, 0, None, None))

    def train(params, k):
        with torch.no_grad():
            for _ in range(k):
                grads = batched_grad(params, buffers, xt, yt)
                params = {name: p - common.LEARNING_RATE * grads[name]
                          for name, p in params.items()}
        return params

    params = train(params, 3)  # warm-up
    start = time.perf_counter()
    params = train(params, steps)
    run_s = time.perf_counter() - start
    final = vmap(loss, in_dims=(0, 0, None, None))(params, buffers, xt, yt)
    return {"width": width, "n": n, "steps": steps, "run_s": run_s,
            "net_steps_per_s": n * steps / run_s, "nets_per_s": n / run_s,
            "torch_version": torch.__version__, "threads": torch.get_num_threads(),
            "final_loss_mean": float(final.mean())}


# ---------------------------------------------------------------------------------------------
# report


def _mib(value) -> str:
    return "?" if value is None else f"{value:.0f}"


REFERENCE_LABELS = {"layout": "plain step, engine layout", "vmap": "sharded jax.vmap"}


def _references_markdown(result: dict) -> str:
    """The engine's rows against the record-free references (empty without references)."""
    refs = result.get("references") or {}
    kinds = [k for k in REFERENCES if any(k in refs.get(str(w), {})
                                          for w in result["config"]["widths"])]
    if not kinds:
        return ""
    rows = []
    for width in result["config"]["widths"]:
        per = refs.get(str(width), {})
        cells = []
        for kind in kinds:
            r = per.get(kind) or {}
            if "error" in r:
                cells.append(f"**{r['error']}**")
            elif "net_steps_per_s" in r:
                batch = f" ({r['map_batch']} per map step)" if r.get("map_batch") else ""
                cells.append(f"{r['net_steps_per_s']:,.0f}{batch}")
            else:
                cells.append(None)
        for e in result["engine"][str(width)]:
            if "error" in e:
                continue
            rows.append([width, e["n"], e["strategy"], e["map_batch"],
                         e.get("checkpoints", e.get("checkpoints_requested")),
                         e["net_steps_per_s"], *cells,
                         *[e.get(f"engine_over_{k}") for k in kinds],
                         e.get("engine_over_best_reference")])
    headers = (["width", "N", "strategy", "map batch", "checkpoints", "engine net-steps/s"]
               + [f"{REFERENCE_LABELS[k]} net-steps/s" for k in kinds]
               + [f"engine / {REFERENCE_LABELS[k]}" for k in kinds]
               + ["engine / best reference"])
    return ("The engine against record-free references in the same process setup (one XLA "
            "device per core; the textbook step: Glorot weights, zero biases, no records, "
            "break test, exactness padding or guards). *Plain step, engine layout*: shard_map "
            "+ lax.map (vmapped blocks of the engine's map batch), the ceiling of the engine's "
            "own batching; *sharded jax.vmap*: `jax.jit(jax.vmap(train_one))` with the network "
            "axis sharded over the devices, what a JAX user would write.\n\n"
            + common.markdown_table(headers, rows) + "\n\n")


def to_markdown(result: dict) -> str:
    peak = result["gemm"]["gflops"]
    rows = []
    for width in result["config"]["widths"]:
        naive = result["naive"].get(str(width)) or {}
        torch_r = result["torch"].get(str(width)) if result["torch"] else None
        for e in result["engine"][str(width)]:
            batch = f"{e['map_batch']}{' (default)' if e['engine_default'] else ''}"
            killed = len(e["killed_attempts"])
            ckpt = e.get("checkpoints", e.get("checkpoints_requested"))
            if "error" in e:
                rows.append([width, e["n"], e["strategy"], batch, ckpt] + [None] * 4
                            + [f"**{e['error']}**"] + [None] * 4 + [killed])
                continue
            rows.append([
                width, e["n"], e["strategy"], batch, ckpt, e["compile_s"], e["run_s"],
                e["net_steps_per_s"], e["gflops"], f"{100 * e['fraction_of_peak']:.1f}%",
                naive.get("net_steps_per_s"), e.get("engine_over_naive"),
                torch_r.get("net_steps_per_s") if torch_r else None,
                e.get("engine_over_torch"), killed])
    table = common.markdown_table(
        ["width", "N", "strategy", "map batch", "checkpoints", "compile s", "run s",
         "net-steps/s", "GFLOP/s",
         "of peak", "naive net-steps/s", "engine/naive", "torch net-steps/s", "engine/torch",
         "killed tries"], rows)
    reference_table = _references_markdown(result)
    torch_note = ("" if result["torch"] else
                  "\n\ntorch.func baseline skipped: PyTorch not installed.")
    return (f"# Engine throughput ({'quick' if result['config']['quick'] else 'default'} run)\n\n"
            f"{common.machine_markdown(result['machine'])}\n\n"
            f"GEMM peak (4096x4096 float32, jax.jit, best of {result['gemm']['repeats']}): "
            f"**{peak:.1f} GFLOP/s** (NumPy BLAS: {result['gemm']['numpy_gflops']:.1f}).\n\n"
            f"Workload: N MLPs 2 -> width -> width -> 1, tanh, MSE, full batch 256, SGD lr "
            f"{common.LEARNING_RATE}, {result['config']['steps']} steps. FLOPs per network-step "
            f"= 3 * 2 * 256 * (2w + w^2 + w).\n\n{table}{torch_note}\n\n"
            f"{reference_table}"
            f"Peak RSS: {result['peak_rss_mib']:.0f} MiB (this process: GEMM, baselines), "
            f"{_mib(result['peak_rss_children_mib'])} MiB (largest engine child process). "
            f"Total wall time: {result['wall_s']:.0f} s.\n")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.naive_worker or args.torch_worker:
        from jaxsym.engine import runner
        from jaxsym.study import tasks

        task = tasks.make_task("teacher_student", dim=common.DIM, teacher_width=2,
                               n_train=common.N_TRAIN, n_test=64)
        if args.torch_worker:
            width, n = int(args.torch_worker[0]), int(args.torch_worker[1])
            print(json.dumps(measure_torch(width, n, args.steps, task.x_train, task.y_train)))
            return 0
        import jax

        data = runner.task_data(task, "mse")
        width, n = int(args.naive_worker[0]), int(args.naive_worker[1])
        result = measure_naive(width, n, args.steps, data["x_train"], data["y_train"])
        result["devices"] = jax.local_device_count()
        print(json.dumps(result))
        return 0
    common.use_all_cores()
    import jax

    if args.reference_worker:
        from jaxsym.engine import runner
        from jaxsym.study import tasks

        kind, width, n = (args.reference_worker[0], int(args.reference_worker[1]),
                          int(args.reference_worker[2]))
        task = tasks.make_task("teacher_student", dim=common.DIM, teacher_width=2,
                               n_train=common.N_TRAIN, n_test=64)
        data = runner.task_data(task, "mse")
        print(json.dumps(measure_reference(kind, width, n, args.steps, args.map_batch[0] or 1,
                                           args.repeats, data["x_train"], data["y_train"])))
        return 0
    if args.worker:
        width, n, strategy = int(args.worker[0]), int(args.worker[1]), args.worker[2]
        print(json.dumps(measure_engine(width, n, strategy, args.steps, args.repeats,
                                        args.map_batch[0], args.checkpoints[0])))
        return 0

    from jaxsym.engine import runner
    from jaxsym.study import tasks

    started = time.perf_counter()
    devices = jax.local_device_count()
    machine = common.machine_info()
    print(common.machine_markdown(machine), flush=True)
    if devices != common.cores():
        print(f"warning: {devices} XLA devices for {common.cores()} cores", flush=True)

    gemm = gemm_peak(args.gemm_repeats)
    peak = gemm["gflops"]
    print(f"GEMM peak: {peak:.1f} GFLOP/s (jax.jit 4096^2 float32, best of {args.gemm_repeats});"
          f" NumPy {gemm['numpy_gflops']:.1f} GFLOP/s", flush=True)

    task = tasks.make_task("teacher_student", dim=common.DIM, teacher_width=2,
                           n_train=common.N_TRAIN, n_test=64)
    data = runner.task_data(task, "mse")
    have_torch = torch_available()
    if not have_torch:
        print("torch not installed: skipping torch.func baseline (pip install torch to enable)",
              flush=True)

    from jaxsym.study import config

    engine, naive, references = {}, {}, {}
    torch_results = {} if have_torch else None
    for width in args.widths:
        flops = common.flops_per_network_step(width)
        spec = common.first_spec(config.parse_study(common.study_toml(width, 1,
                                                                      steps=args.steps)))
        n = -(-args.n[width] // devices) * devices  # whole chunk, no padding networks
        naive[str(width)] = r = measure_naive_in_child(width, args.naive_n[width], args.steps)
        print(f"width {width:4d}: naive loop  {r['n']:5d} nets  {r['net_steps_per_s']:12,.0f} "
              f"net-steps/s  {r['net_steps_per_s'] * flops / 1e9:7.2f} GFLOP/s", flush=True)
        if have_torch:
            try:
                torch_results[str(width)] = r = _baseline_in_child("--torch-worker", width, n,
                                                                   args.steps)
                print(f"width {width:4d}: torch.func  {n:5d} nets  "
                      f"{r['net_steps_per_s']:12,.0f} net-steps/s  "
                      f"{r['net_steps_per_s'] * flops / 1e9:7.2f} GFLOP/s", flush=True)
            except Exception as error:  # noqa: BLE001 - record, keep benchmarking
                torch_results[str(width)] = {"width": width, "n": n, "error": repr(error)}
                print(f"width {width:4d}: torch.func failed: {error!r}", flush=True)
        references[str(width)] = {}
        for kind in args.references:
            batch = common.map_batch(spec, "map") if kind == "layout" else 1
            references[str(width)][kind] = r = measure_reference_in_child(kind, width, n, batch,
                                                                          args)
            if "error" in r:
                print(f"width {width:4d}: reference {kind}: {r['error']}", flush=True)
                continue
            print(f"width {width:4d}: {REFERENCE_LABELS[kind]:24s} {r['n']:5d} nets  "
                  f"{r['net_steps_per_s']:12,.0f} net-steps/s  "
                  f"{r['net_steps_per_s'] * flops / 1e9:7.2f} GFLOP/s  "
                  f"compile {r['compile_s']:.1f} s", flush=True)
        engine[str(width)] = []
        variants = [(v, c) for c in args.checkpoints for v in engine_variants(args, width)]
        for (strategy, batch, default), checkpoints in variants:
            e = measure_engine_in_child(width, n, strategy, batch, args, checkpoints)
            e["engine_default"] = default
            e["checkpoints_requested"] = checkpoints
            label = (f"engine {strategy:4s} batch {batch:2d}{'*' if default else ' '} "
                     f"ckpt {checkpoints:3d}")
            for attempt in e["killed_attempts"]:
                print(f"width {width:4d}: {label}  killed ({attempt}; deadlocked?)", flush=True)
            engine[str(width)].append(e)
            if "error" in e:
                print(f"width {width:4d}: {label}  {e['n']:5d} nets  {e['error']}", flush=True)
                continue
            e["flops_per_network_step"] = flops
            e["gflops"] = e["net_steps_per_s"] * flops / 1e9
            e["fraction_of_peak"] = e["gflops"] / peak
            e["engine_over_naive"] = e["net_steps_per_s"] / naive[str(width)]["net_steps_per_s"]
            rates = {k: r["net_steps_per_s"] for k, r in references[str(width)].items()
                     if "net_steps_per_s" in r}
            for kind, rate in rates.items():
                e[f"engine_over_{kind}"] = e["net_steps_per_s"] / rate
            e["engine_over_best_reference"] = (e["net_steps_per_s"] / max(rates.values())
                                               if rates else None)
            t = (torch_results or {}).get(str(width)) or {}
            e["engine_over_torch"] = (e["net_steps_per_s"] / t["net_steps_per_s"]
                                      if "net_steps_per_s" in t else None)
            print(f"width {width:4d}: {label}  {e['n']:5d} nets  "
                  f"{e['net_steps_per_s']:12,.0f} net-steps/s  {e['gflops']:7.2f} GFLOP/s  "
                  f"{100 * e['fraction_of_peak']:5.1f}% of peak  compile {e['compile_s']:.1f} s"
                  f"  run {e['run_s']:.2f} s  x{e['engine_over_naive']:.2f} naive"
                  + (f"  x{e['engine_over_torch']:.2f} torch" if e["engine_over_torch"] else ""),
                  flush=True)

    result = {"benchmark": "throughput", "machine": machine, "gemm": gemm,
              "config": {"quick": args.quick, "widths": args.widths, "steps": args.steps,
                         "checkpoints": args.checkpoints,
                         "n": {str(w): args.n[w] for w in args.widths},
                         "naive_n": {str(w): args.naive_n[w] for w in args.widths},
                         "strategies": args.strategies, "repeats": args.repeats,
                         "references": args.references,
                         "map_batch": ["auto" if b is None else b for b in args.map_batch],
                         "engine_timeout_s": args.engine_timeout,
                         "idle_timeout_s": args.idle_timeout, "retries": args.retries,
                         "n_train": common.N_TRAIN, "learning_rate": common.LEARNING_RATE,
                         "flops_formula": "3 * 2 * 256 * (2*width + width**2 + width)"},
              "engine": engine, "naive": naive, "references": references,
              "torch": torch_results,
              "peak_rss_mib": common.peak_rss_mib(),
              "peak_rss_children_mib": max(
                  (e.get("child_peak_rss_mib") or 0 for es in engine.values() for e in es),
                  default=None) or None,
              "wall_s": time.perf_counter() - started}
    json_path, md_path = common.write_results(args.out, "throughput", result, to_markdown(result))
    print(f"peak RSS {result['peak_rss_mib']:.0f} MiB (engine children: "
          f"{_mib(result['peak_rss_children_mib'])} MiB); wall {result['wall_s']:.0f} s; "
          f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
