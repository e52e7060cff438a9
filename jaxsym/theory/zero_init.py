"""W = 0 with random biases: the rank-one trap, and what leaves it.

With every weight 0 the layers unlock one per step from the output down, and each hidden
layer's first weight update is rank one: unit j's row is ``alpha_j r^T`` with one direction r
for all units (``dz_j = (W_{l+1}^T dz_{l+1})_j g'(b_j)`` and W_{l+1} is itself rank one after
its first update).

**Positively homogeneous units** (relu; leaky_relu units of one bias sign): the first updates
make every live unit a positive multiple of one unit: ``(w_j, b_j, v_j) = c_j (omega, beta,
nu)`` with ``c_j`` proportional to ``b_j`` (relu: ``g(b_j) g'(b_j) = b_j`` for ``b_j > 0``; dead
units, ``b_j < 0``, stay 0). Because ``g(c z) = c g(z)`` for ``c > 0``, the gradient of unit j is
then ``c_j`` times a common gradient, so any update LINEAR in the gradient (gradient descent,
heavy-ball momentum, any minibatch) keeps the units multiples of one unit: the set is
invariant and the layer stays rank one forever; no amount of minibatch noise or bias scale
changes that. **Adam** divides each coordinate by its own running RMS, which removes the
factor ``c_j`` (its first step is ``-lr sign(g)``, the same size for every unit), so units
with different ``b_j`` get different ratios ``b_j / ||w_j||`` and therefore different kink
positions along r: their active sets differ and the directions separate. **Smooth units**
(tanh, gelu, ...) are not homogeneous: ``g'(alpha_j s + b_j)`` differs nonlinearly across
units, so even gradient descent leaves rank one after the second update (slowly when the
curvature g'' at the biases is small).
"""

from __future__ import annotations

import numpy as np

__all__ = ["proportionality_defect"]


def proportionality_defect(params, layer: int = 0, rtol: float = 1e-12) -> float:
    """How far the live units of hidden layer ``layer`` are from being multiples of one unit:
    the largest, over the two groups of units by the sign of their bias, of ``s2 / s1`` of the
    matrix whose rows are the units' full parameter vectors (incoming row, bias, outgoing
    column). Live: a nonzero incoming row (a dead relu unit keeps W_j = 0). 0 when the live
    units of each sign are multiples of one unit (the rank-one trap of homogeneous units; a
    leaky_relu layer holds one such family per bias sign)."""
    W, b = np.asarray(params[layer]["W"]), np.asarray(params[layer]["b"])
    out = np.asarray(params[layer + 1]["W"]).T
    units = np.concatenate([W, b[:, None], out], axis=1)
    rows = np.linalg.norm(W, axis=1)
    live = rows > rtol * max(rows.max(), np.finfo(float).tiny)
    worst = 0.0
    for group in (live & (b > 0), live & (b < 0)):
        if group.sum() >= 2:
            s = np.linalg.svd(units[group], compute_uv=False)
            worst = max(worst, float(s[1] / s[0]))
    return worst
