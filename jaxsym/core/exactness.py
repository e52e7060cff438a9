"""Checks that identical units stay BITWISE identical, under several CPU kernel families.

Theorem 1 of the thread: units of a layer that start identical (same incoming row, bias and
outgoing column) stay identical under gradient descent, for any activation, loss and
elementwise optimizer. jaxsym computes it exactly (see :mod:`jaxsym.core.dense`); this module checks
it, with nothing but ``==``:

* :func:`product_failures`: the forward and backward products of :func:`jaxsym.core.dense.dense` on
  a grid of shapes (1, 2, 3, 8, 16, 17, 33 units; batches of 1, 5 and 64) with symmetric
  inputs; returns every shape whose symmetric outputs are not bitwise equal.
* :func:`theorem_asymmetry`: trains networks from identical units with the study's own step
  (:func:`jaxsym.core.train.make_step`) for ``steps`` steps, one network per tuple of hidden
  widths (``--full``: :data:`FULL_SHAPES`, widths 8, 16, 17, 33 at depths 2 and 3; otherwise
  :data:`SUITE_SHAPES`, every one of those widths in half the networks), in one compiled
  program per activation x loss x optimizer x batch mode x dtype, and returns the largest
  difference between twin parameters: exactly 0.0 when the theorem holds bitwise.

The CPU's kernels decide the rounding, so the checks are meant to run under several
:data:`KERNEL_FAMILIES` (``XLA_FLAGS`` values), each in a fresh process::

    XLA_FLAGS="--xla_cpu_experimental_ynn_fusion_type= --xla_cpu_max_isa=AVX2" \\
        python -m jaxsym.core.exactness --full

prints a JSON report (``--full``: the whole activation x loss x optimizer x batch-mode x dtype
product; the default is the test suite's covering subset).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
import zlib

import numpy as np

from jaxsym.core.precision import with_float64
from jaxsym.core.spec import DTYPES, LOSSES, OPTIMIZERS

__all__ = ["KERNEL_FAMILIES", "FAMILY_CASES", "WIDTHS", "DEPTHS", "FULL_SHAPES", "SUITE_SHAPES",
           "product_failures",
           "symmetric_params", "twin_asymmetry", "theorem_cases", "theorem_asymmetry", "main"]

#: Covering subsets of :func:`theorem_cases` (its default list) for the other kernel families:
#: AVX2 every loss, optimizer, batch mode and dtype; SSE4.2 every loss, batch mode and dtype
#: (momentum and Adam). ``python -m jaxsym.core.exactness --full`` under each family's flags runs
#: the whole product (benchmarks/results/exact_symmetry/).
FAMILY_CASES = {"xla-avx2": (1, 6, 14, 17, 30), "xla-sse4.2": (3, 22, 31)}

#: name -> XLA_FLAGS. jax >= 0.10 on CPU runs dots and reductions in YNNPACK, whose kernels are
#: chosen from the CPU's own features (``--xla_cpu_max_isa`` does not reach them); with
#: YNNPACK off XLA uses its own emitters and Eigen, which follow ``--xla_cpu_max_isa``. So these
#: four flag sets run four different kernel families on one machine.
KERNEL_FAMILIES = {
    "native": "",
    "xla-native": "--xla_cpu_experimental_ynn_fusion_type=",
    "xla-avx2": "--xla_cpu_experimental_ynn_fusion_type= --xla_cpu_max_isa=AVX2",
    "xla-sse4.2": "--xla_cpu_experimental_ynn_fusion_type= --xla_cpu_max_isa=SSE4_2",
}
WIDTHS = (8, 16, 17, 33)
DEPTHS = (2, 3)
#: hidden widths of the networks of ``--full``: every width of :data:`WIDTHS` at every depth of
#: :data:`DEPTHS` (one and two hidden layers)
FULL_SHAPES = tuple((w,) * (d - 1) for w in WIDTHS for d in DEPTHS)
#: the test suite's covering subset, half the networks (a theorem case's compile time grows
#: with its networks): the remainder widths 17 and 33 with one hidden layer, and every width of
#: :data:`WIDTHS` in a two-hidden-layer network whose layers differ (17 -> 8, 33 -> 16), so each
#: width is both a layer's output and the next layer's input
SUITE_SHAPES = ((17,), (33,), (17, 8), (33, 16))


#: unit counts of the product check: degenerate (1) and remainders of 16-wide kernels (17, 33);
#: ``--full`` adds 2
UNITS, FULL_UNITS = (1, 17, 33), (1, 2, 17, 33)


@with_float64
def product_failures(dtypes=DTYPES, units=UNITS) -> list[dict]:
    """Shapes at which :func:`jaxsym.core.dense.dense` breaks exact symmetry (empty: none).

    For inputs ``a: (n, n_in)`` with identical columns (the output of a symmetric layer),
    weights with identical rows (``z``) or identical columns (``dA``), and a cotangent
    ``dz: (n, n_out)`` with identical columns, checks that ``z``'s columns, ``dA``'s columns and
    all entries of ``dW`` and ``db`` are bitwise equal. Shapes: ``n`` in (1, 64), ``n_out`` and
    ``n_in`` in ``units`` (bfloat16: ``n = 64`` only).
    """
    import jax
    import jax.numpy as jnp

    from jaxsym.core import dense

    rng = np.random.default_rng(0)

    def products(a, W_rows, W_cols, b, dz):
        z = dense.dense(a, W_rows, b)
        _, vjp = jax.vjp(dense.dense, a, W_cols, b)
        return (z,) + vjp(dz)

    run = jax.jit(products)
    failures = []
    for dtype, n, n_out, n_in in itertools.product(dtypes, (1, 64), units, units):
        if dtype == "bfloat16" and n == 1:
            continue

        def draw(*shape):
            return jnp.asarray(rng.standard_normal(shape), dtype)
        a = jnp.tile(draw(n, 1), (1, n_in))
        W_rows = jnp.tile(draw(1, n_in), (n_out, 1))
        W_cols = jnp.tile(draw(n_out, 1), (1, n_in))
        b = jnp.full((n_out,), 0.3, dtype)
        dz = jnp.tile(draw(n, 1), (1, n_out))
        z, da, dw, db = (np.asarray(v.astype(jnp.float64))
                         for v in run(a, W_rows, W_cols, b, dz))
        bad = {"z": bool((z != z[:, :1]).any()), "dA": bool((da != da[:, :1]).any()),
               "dW": bool((dw != dw.flat[0]).any()), "db": bool((db != db[0]).any())}
        if any(bad.values()):
            failures.append({"dtype": dtype, "n": n, "n_out": n_out, "n_in": n_in,
                             "products": [k for k, v in bad.items() if v]})
    return failures


def symmetric_params(rng: np.random.Generator, sizes, dtype):
    """An MLP whose hidden layers each have identical units, otherwise random: the first layer's
    rows are one random row, middle layers one random constant, the output layer's columns one
    random column; each hidden layer's biases one random value. A layer fed by ``n_in``
    identical units is scaled by ``1 / n_in`` (the units add up), the first by
    ``1 / sqrt(n_in)``."""
    import jax.numpy as jnp

    params = []
    depth = len(sizes) - 1
    for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        scale = 1.0 / np.sqrt(n_in) if l == 0 else 1.0 / n_in
        if l == depth - 1:       # output layer: identical columns
            W = np.tile(rng.standard_normal((n_out, 1)) * scale, (1, n_in))
            b = 0.1 * rng.standard_normal(n_out)
        elif l == 0:             # first layer: identical rows
            W = np.tile(rng.standard_normal((1, n_in)) * scale, (n_out, 1))
            b = np.full(n_out, 0.1 + 0.2 * abs(rng.standard_normal()))
        else:                    # rows and columns identical
            W = np.full((n_out, n_in), 1.5 * scale * rng.standard_normal())
            b = np.full(n_out, 0.1 + 0.2 * abs(rng.standard_normal()))
        params.append({"W": jnp.asarray(W, dtype), "b": jnp.asarray(b, dtype)})
    return params


def twin_asymmetry(params):
    """Largest |difference| between twin parameters of the hidden units (traceable): every
    hidden layer's rows of W and entries of b against unit 0, and the next layer's columns
    against column 0. Exactly 0.0 iff every hidden layer's units are bitwise identical."""
    import jax.numpy as jnp

    worst = []
    for l in range(len(params) - 1):
        W, b, nxt = params[l]["W"], params[l]["b"], params[l + 1]["W"]
        for d in (W - W[:1], b - b[:1], nxt - nxt[:, :1]):
            worst.append(jnp.max(jnp.abs(d.astype(jnp.float32 if d.dtype == jnp.bfloat16
                                                   else d.dtype))))
    return jnp.max(jnp.stack([w.astype(worst[0].dtype) for w in worst]))


def theorem_cases(full: bool) -> list[tuple]:
    """``(activation, loss, optimizer, batch_mode, dtype)`` cases.

    ``full``: the whole product (activations x losses x optimizers x {full, minibatch} x
    {float32, float64}, plus bfloat16 for every activation x loss with SGD). Otherwise a
    covering subset for the test suite: every activation x loss pair once, cycling through
    the 6 optimizer x batch-mode pairs and alternating float32 / float64, plus bfloat16 cases.
    """
    from jaxsym.core import nn

    activations, losses = nn.activation_names(), LOSSES
    opt_modes = list(itertools.product(OPTIMIZERS, ("full", "minibatch")))
    if full:
        cases = [(a, l, o, m, d) for a, l, (o, m), d in
                 itertools.product(activations, losses, opt_modes, ("float32", "float64"))]
        cases += [(a, l, "sgd", "full", "bfloat16")
                  for a, l in itertools.product(activations, losses)]
        return cases
    cases = [(a, l, *opt_modes[i % len(opt_modes)], ("float32", "float64")[i % 2])
             for i, (a, l) in enumerate(itertools.product(activations, losses))]
    cases += [("tanh", "mse", "momentum", "minibatch", "bfloat16"),
              ("relu", "softmax_ce", "adam", "full", "bfloat16")]
    return cases


@with_float64
def theorem_asymmetry(activation, loss, optimizer, batch_mode, dtype, steps=2000,
                      shapes=FULL_SHAPES, n=48, dim=3):
    """Train one network per tuple of hidden widths in ``shapes`` from identical units with the
    study's step; return ``{hidden widths: (asymmetry, moved)}``: the largest twin difference
    after ``steps`` steps (0.0 = bitwise symmetric) and the relative change of the hidden
    parameters (first layer's W and b, last hidden layer's b: the training moved the symmetric
    units). One compiled program for all shapes."""
    import jax
    import jax.numpy as jnp

    from jaxsym.core import train

    rng = np.random.default_rng(zlib.crc32(f"{activation}/{loss}/{optimizer}".encode()))
    x = jnp.asarray(rng.standard_normal((n, dim)), dtype)
    n_out = 3 if loss == "softmax_ce" else 2
    if loss == "mse":
        y = jnp.asarray(rng.standard_normal((n, n_out)), dtype)
    elif loss == "bce":
        y = jnp.asarray(rng.random((n, n_out)) < 0.5, dtype)
    else:
        y = jnp.asarray(rng.integers(0, n_out, n), jnp.int32)
    shapes = [tuple(hidden) for hidden in shapes]
    starts = [symmetric_params(rng, (dim,) + hidden + (n_out,), dtype) for hidden in shapes]
    lr = {"sgd": 0.05, "momentum": 0.01, "adam": 1e-3}[optimizer]
    if dtype == "bfloat16":  # updates must exceed bfloat16's resolution (8 bits)
        lr *= 4
    batch = 16 if batch_mode == "minibatch" else None

    def run(all_params, key):
        out = []
        for p in all_params:
            final = train.train(p, x, y, activation=activation, loss=loss, optimizer=optimizer,
                                learning_rate=lr, steps=steps, batch_size=batch, key=key).params
            hidden = [(a[0]["W"], a[0]["b"], a[-2]["b"]) for a in (p, final)]
            start, end = (jnp.concatenate([v.ravel().astype(jnp.float32) for v in h])
                          for h in hidden)
            moved = jnp.linalg.norm(end - start) / jnp.linalg.norm(start)
            out.append((twin_asymmetry(final).astype(jnp.float64), moved))
        return out

    results = jax.jit(run)(starts, jax.random.key(1))
    return {shape: (float(a), float(m)) for shape, (a, m) in zip(shapes, results)}


def _counts(rows) -> dict:
    """exact: twin difference 0.0; diverged: non-finite parameters (no symmetry statement is
    possible); failures: finite and nonzero (theorem 1 broken by the arithmetic)."""
    finite = [r for r in rows if np.isfinite(r["asymmetry"])]
    return {"theorem_networks": len(rows),
            "theorem_exact": sum(r["asymmetry"] == 0.0 for r in finite),
            "theorem_diverged": len(rows) - len(finite),
            "theorem_failures": sum(r["asymmetry"] != 0.0 for r in finite)}


def summarize(paths) -> str:
    """A markdown table of saved ``python -m jaxsym.core.exactness`` JSON reports."""
    lines = ["| XLA_FLAGS | product shapes failing | networks | bitwise symmetric | diverged "
             "(non-finite) | asymmetric | seconds |", "|---|---|---|---|---|---|---|"]
    for path in paths:
        with open(path, encoding="utf-8") as f:
            report = json.load(f)
        c = _counts(report["theorem"])
        flags = report["xla_flags"] or "(none: the machine's own kernels)"
        lines.append(f"| `{flags}` | "
                     f"{len(report['product_failures'])} | {c['theorem_networks']} | "
                     f"{c['theorem_exact']} | {c['theorem_diverged']} | "
                     f"{c['theorem_failures']} | {report['seconds']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxsym.core.exactness", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the whole theorem product")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--products-only", action="store_true")
    parser.add_argument("--cases", help="comma-separated case indices (default: all)")
    parser.add_argument("--summarize", nargs="+", metavar="JSON",
                        help="print a markdown table of saved reports instead of running")
    args = parser.parse_args(argv)
    if args.summarize:
        print(summarize(args.summarize))
        return 0
    started = time.perf_counter()
    report = {"xla_flags": os.environ.get("XLA_FLAGS", ""), "product_failures": product_failures(
        units=FULL_UNITS if args.full else UNITS)}
    if not args.products_only:
        cases = theorem_cases(args.full)
        if args.cases:
            cases = [cases[int(i)] for i in args.cases.split(",")]
        rows = []
        shapes = FULL_SHAPES if args.full else SUITE_SHAPES
        for case in cases:
            result = theorem_asymmetry(*case, steps=args.steps, shapes=shapes)
            rows.extend({"case": list(case), "hidden": list(h), "asymmetry": a, "moved": m}
                        for h, (a, m) in result.items())
        report["theorem"] = rows
        report.update(_counts(rows))
    report["seconds"] = round(time.perf_counter() - started, 1)
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
