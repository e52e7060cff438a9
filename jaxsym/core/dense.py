"""Dense-layer products in which identical units get bitwise-identical results (exact symmetry).

The symmetry question hangs on one property of the arithmetic: units of a layer that hold
bitwise-identical parameters must get bitwise-identical pre-activations, gradients and updates.
Mathematically they do; numerically only if every unit's dot product is computed by the same
floating-point operations in the same order. CPU matmul kernels do not promise that. They
compute the full vector blocks of an output axis with one code path and the remainder (the last
``n mod 16`` columns, say) with another that rounds differently, for example a matrix-vector
kernel vectorised across outputs, or a remainder column summed as a dot product. So a width-17
layer's 17th unit drifts away from its 16 twins by 1 ulp, while widths 8 and 16 hide it. Which
kernel runs depends on the CPU (jax >= 0.10 on CPU uses YNNPACK for dots and reductions,
dispatched by the CPU's features; with YNNPACK off it uses XLA's own and Eigen's kernels, which
follow ``--xla_cpu_max_isa``), so on the plain formulation the CPU decides whether identical units
stay identical.

Formulation: every *unit axis* of a product, that is, every free axis that indexes the units of a
layer, is zero-padded to a multiple of :data:`BLOCK` = 16 elements before the product and
sliced back after it. A padded axis has no remainder: the kernel computes every real unit with
its full-block code path. With ``A: (n, n_in)``, ``W: (n_out, n_in)``, ``b: (n_out,)``:

  * forward   ``Z  = A W^T + b``      ``W``'s rows (``n_out``) padded
  * backward  ``dA = dZ W``           ``W``'s columns (``n_in``) padded
  * backward  ``dW = dZ^T A``         ``dZ``'s and ``A``'s columns (``n_out``, ``n_in``) padded
  * backward  ``db = sum_n dZ[n, :]`` ``dZ``'s columns padded

The sample axis ``n`` and the reduction axes are never padded (every output entry of a product
reduces over the same length in the same order). Widths that are multiples of 16 cost nothing:
the padding is a no-op and the products are the plain ones. Other widths pay the padded flops
(width 17 -> 32, the output layer's one-unit gradient -> 16 rows); ``benchmarks/throughput.py
--formulation`` measures it. Where the plain products are asymmetric: the matrix-vector product
``dv = dz^T h`` of a one-output layer, the transposed-LHS product ``dZ^T A`` (its remainder
column), and Eigen's remainder columns of ``Z``, ``dA``, ``dW`` and reductions.

This is verified, not assumed: ``tests/test_exact_symmetry.py`` trains the activation x loss x
optimizer x batch-mode product from identical units at widths 8, 16, 17 and 33 and depths 2 and 3
in float32, float64 and bfloat16, under every strategy, in subprocesses with YNNPACK on (the
machine's kernels) and off under ``--xla_cpu_max_isa`` = native, ``AVX2`` and ``SSE4_2``, and
asserts every unit's parameters bitwise equal. It also checks the products themselves over a
grid of shapes.

:func:`dense` is a ``jax.custom_vjp``: its backward pass is written above (JAX's own transpose
rules would bring back the unpadded transposed-LHS product). Its rules are differentiable, so
``jax.hessian`` and ``jax.jvp`` of a gradient still work (forward-over-reverse).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["BLOCK", "dense", "padded", "unit_sum", "padded_size", "pad_params", "unpad_params"]

#: Unit axes are padded to a multiple of this many elements (one AVX-512 float32 vector).
BLOCK = 16


def padded(x: jax.Array, axis: int) -> jax.Array:
    """``x`` with axis ``axis`` zero-padded at the end to a multiple of :data:`BLOCK`
    (``x`` itself if it already is one)."""
    size = x.shape[axis]
    extra = -size % BLOCK
    if extra == 0:
        return x
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, extra)
    return jnp.pad(x, widths)


def padded_size(n: int) -> int:
    """``n`` rounded up to a multiple of :data:`BLOCK`."""
    return -(-int(n) // BLOCK) * BLOCK


def pad_params(params):
    """The training layout of a params list: every HIDDEN layer's unit axis zero-padded to a
    multiple of :data:`BLOCK` (rows of its ``W`` and ``b``, columns of the next ``W``).

    Why: elementwise kernels (activations, their derivatives, optimizer updates) are vectorised
    over the flattened array, and the elements past the last full vector run in a scalar
    remainder loop that may round differently (a fused multiply-add in one path, a separate
    multiply and add in the other). On the natural ``(17, 3)`` first-layer weights the
    remainder is exactly unit 16's row, which then drifts from its twins. In the padded layout
    every array that carries a unit axis has a size that is a multiple of 16 elements, and a
    row's remainder (if a kernel loops row by row) falls on the same positions for every unit.
    The padded units stay exactly zero in training when the hidden activations are masked
    (``nn.apply(..., hidden_widths=...)``): their gradients are exactly 0 under SGD, momentum
    and Adam. Input and output axes are not padded (they are not symmetric units).
    """
    out = []
    last = len(params) - 1
    for l, layer in enumerate(params):
        W, b = layer["W"], layer["b"]
        if l < last:
            W, b = padded(W, 0), padded(b, 0)
        if l > 0:
            W = padded(W, 1)
        out.append({"W": W, "b": b})
    return out


def unpad_params(params, layer_sizes):
    """The natural view ``(n_out, n_in)`` of training-layout params (inverse of
    :func:`pad_params` for the network ``layer_sizes = (n_in, ..., n_out)``)."""
    return [{"W": layer["W"][:n_out, :n_in], "b": layer["b"][:n_out]}
            for layer, n_in, n_out in zip(params, layer_sizes[:-1], layer_sizes[1:])]


def unit_sum(dz: jax.Array) -> jax.Array:
    """``sum_n dz[n, :]`` for ``dz: (n, units)`` -> ``(units,)``, the unit axis padded."""
    return jnp.sum(padded(dz, 1), axis=0)[: dz.shape[1]]


@jax.custom_vjp
def dense(a: jax.Array, W: jax.Array, b: jax.Array) -> jax.Array:
    """One layer's pre-activations ``z = a @ W.T + b`` with exactly symmetric units.

    Args:
      a: inputs ``(n, n_in)``.
      W: weights ``(n_out, n_in)``.
      b: biases ``(n_out,)``.

    Returns:
      ``(n, n_out)``. Units (rows of W with their biases) that are bitwise equal give bitwise
      equal columns of z, and equal cotangents give bitwise equal gradients (module doc).
    """
    return _forward(a, W, b)


def _forward(a, W, b):
    return (a @ padded(W, 0).T)[:, : W.shape[0]] + b


def _dense_fwd(a, W, b):
    # not dense(...) itself: a custom_vjp function admits no forward-mode autodiff, and
    # jax.hessian differentiates this rule forward-mode
    return _forward(a, W, b), (a, W)


def _dense_bwd(residuals, dz):
    a, W = residuals
    n_out, n_in = W.shape
    da = (dz @ padded(W, 1))[:, :n_in]
    dw = (padded(dz, 1).T @ padded(a, 1))[:n_out, :n_in]
    return da, dw, unit_sum(dz)


dense.defvjp(_dense_fwd, _dense_bwd)
