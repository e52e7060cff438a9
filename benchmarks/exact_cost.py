"""What exact symmetric arithmetic costs: one network's SGD step, plain vs exact formulation.

    python benchmarks/exact_cost.py --out benchmarks/results

* plain: the textbook step, ``z = a @ W.T + b`` in the natural layout, gradients by JAX's own
  transpose rules (what jaxsym ran before; identical units drift apart at widths 17, 33).
* exact: the study's step (:func:`jaxsym.core.train.make_step`): padded training layout and
  :func:`jaxsym.core.dense.dense` (identical units stay bitwise identical on every kernel family).

Workload: the benchmark MLP 2 -> width -> width -> 1 (tanh, MSE, 256 samples, full batch),
float32, ``--steps`` SGD steps in one jitted ``lax.scan``, one network, one XLA device; best of
``--repeats`` timed runs after a warm-up. Widths that are multiples of 16 pay only the custom
backward pass; other widths also pay the padding (17 -> 32 units).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=_common.DEFAULT_RESULTS)
    parser.add_argument("--widths", default="16,17,33,64,256")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from jaxsym.core import dense, train
    from jaxsym.core.init import init_mlp

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((_common.N_TRAIN, _common.DIM)), jnp.float32)
    y = jnp.asarray(rng.standard_normal((_common.N_TRAIN, 1)), jnp.float32)
    rows = []
    for width in (int(w) for w in args.widths.split(",")):
        sizes = (_common.DIM, width, width, 1)
        params = init_mlp(jax.random.key(0), sizes, "normal", W_std=1.0,
                                  dtype="float32")

        def plain_loss(p):
            a = x
            for layer in p[:-1]:
                a = jnp.tanh(a @ layer["W"].T + layer["b"])
            return jnp.mean(optax.l2_loss(a @ p[-1]["W"].T + p[-1]["b"], y))

        def plain(p):
            def body(p, _):
                g = jax.grad(plain_loss)(p)
                return jax.tree.map(lambda a, b: a - _common.LEARNING_RATE * b, p, g), None
            return jax.lax.scan(body, p, None, length=args.steps)[0]

        tx, step = train.make_step(x, y, layer_sizes=sizes, activation="tanh", loss="mse",
                                   optimizer="sgd", learning_rate=_common.LEARNING_RATE)

        def exact(p):
            def body(carry, t):
                q, s = carry
                _, _, q, s = step(q, s, t)
                return (q, s), None
            padded = dense.pad_params(p)
            return jax.lax.scan(body, (padded, tx.init(padded)),
                                jnp.arange(args.steps, dtype=jnp.int32))[0][0]

        timing = {}
        for name, fn in (("plain", plain), ("exact", exact)):
            compiled = jax.jit(fn).lower(params).compile()
            jax.block_until_ready(compiled(params))
            best = float("inf")
            for _ in range(args.repeats):
                start = time.perf_counter()
                jax.block_until_ready(compiled(params))
                best = min(best, time.perf_counter() - start)
            timing[name] = best / args.steps * 1e6
        rows.append({"width": width, "padded_width": dense.padded_size(width),
                     "plain_us_per_step": round(timing["plain"], 2),
                     "exact_us_per_step": round(timing["exact"], 2),
                     "exact_over_plain": round(timing["exact"] / timing["plain"], 3)})
        print(rows[-1], flush=True)
    machine = _common.machine_info()
    headers = ["width", "padded to", "plain us/step", "exact us/step", "exact / plain"]
    table = _common.markdown_table(headers, [[r["width"], r["padded_width"],
                                              r["plain_us_per_step"], r["exact_us_per_step"],
                                              r["exact_over_plain"]] for r in rows])
    markdown = "\n".join([
        "# Cost of exact symmetric arithmetic (one network, one device, float32)", "",
        "`python benchmarks/exact_cost.py --out benchmarks/results` (best of "
        f"{args.repeats} runs of {args.steps} SGD steps)", "", _common.machine_markdown(machine),
        "", table])
    _common.write_results(args.out, "exact_cost", {"machine": machine, "rows": rows,
                                                   "steps": args.steps,
                                                   "repeats": args.repeats}, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
