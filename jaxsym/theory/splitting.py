"""The splitting matrix: the Hessian's antisymmetric block at a symmetric one-hidden-layer point.

Network ``f(x) = V g(W x + b) + c`` with ``m`` hidden units, ``W: (m, d)``, ``b: (m,)``,
``V: (n_out, m)``; training loss ``L = loss(f(X), Y)`` (any of jaxsym's losses, which average
over the batch). At a SYMMETRIC point every unit j has the same incoming ``u = (w, b)`` and the
same outgoing column ``v = V[:, j]``; write ``x~ = (x, 1)``, ``z_n = u . x~_n`` and
``l_n = dL/df(x_n)`` (a vector over outputs, the 1/N of the mean included).

Derivation. ``H = sum_n [J_n^T (d^2 L / df^2) J_n + sum_k l_nk d^2 f_k(x_n)]``. An
*antisymmetric* direction moves unit j by ``a_j t`` with ``sum_j a_j = 0`` and one per-unit
direction ``t = (t_u, t_v)`` (``t_u`` in R^{d+1}, ``t_v`` in R^{n_out}). Its first-order change
of f is ``sum_j a_j (v g'(z) x~ . t_u + g(z) t_v) = 0``: the Gauss-Newton term vanishes, and
the second derivatives of f are unit-diagonal. Hence, for antisymmetric ``a ⊗ t`` and
``a' ⊗ t'``,

    (a ⊗ t)^T H (a' ⊗ t') = (a . a') t^T B t',   B = [[S, R], [R^T, 0]],

    S = sum_n (l_n . v) g''(z_n) x~_n x~_n^T        ((d+1) x (d+1): the splitting matrix)
    R = sum_n g'(z_n) x~_n l_n^T                    ((d+1) x n_out)

and the antisymmetric subspace is invariant under H (the symmetric-antisymmetric cross terms
vanish the same way). So H restricted to it is ``I_{m-1} ⊗ B``: every eigenvalue of B has
multiplicity ``m - 1``. At the collapsed critical point ``dL/du = R v = 0`` and
``dL/dv = sum_n g(z_n) l_n = 0``; for one output (``n_out = 1``, v != 0) this forces R = 0, so
the antisymmetric spectrum is ``eig(S)`` plus zeros, and the point is a saddle in the
antisymmetric directions iff S has a negative eigenvalue (Fukumizu & Amari 2000; Liu, Wu & Wang
2019). With ``n_out > 1`` (softmax) R need not vanish, and ``lambda_min(B) <= lambda_min(S)``.

Width: the collapsed point of the m-unit network duplicates the one-unit optimum with
``v = v_1 / m`` (the units share the output), so ``f`` and ``l_n`` do not depend on m, S
scales as ``1 / m`` (through v) and R does not (for one output it is 0 there): with one output
``lambda_min = lambda_min(S_1) / m`` with multiplicity m - 1. Tested against ``jax.hessian``
in tests/test_splitting.py.

Weight decay (coupled L2). The decayed optimizer (:func:`jaxsym.core.train.make_optimizer`)
follows ``L_lambda = L + (lambda / 2) ||theta||^2`` over every parameter (weights and biases of
all layers). Its Hessian is ``H + lambda I``, and ``lambda I`` maps the antisymmetric subspace
to itself with the same metric, so the block is exactly

    B_lambda = B + lambda I_{d+1+n_out}

(constant 1 in the ``lambda / 2`` convention, which is PyTorch's and optax's
``weight_decay = lambda``; a penalty written ``lambda ||theta||^2`` doubles it), with ``S`` and
``R`` evaluated where the block is taken. The point moves, though: the DECAYED collapsed
critical point solves ``R v = -lambda u`` (``u = (w, b)``, the common incoming vector) and
``sum_n g(z_n) l_n = -lambda v``, so with one output R no longer vanishes there:
``R = -(lambda / v) u``. Schur's complement on the output entry (``lambda > 0``) then gives, for
``n_out = 1``,

    B_lambda > 0  <=>  S + lambda (I - u u^T / v^2) > 0,

so decay stabilises every direction orthogonal to ``u`` by ``lambda`` but the direction ``u``
itself only by ``lambda (1 - |u|^2 / v^2)``: random biases still break the symmetry at the
decayed point unless ``lambda`` outweighs the negative curvature of S in the metric
``I - u u^T / v^2``, not merely when ``lambda > -lambda_min(S)``. For a positively homogeneous
g (relu, leaky_relu, linear) the decayed critical point is balanced, ``|u| = |v|``
(``u . dL/du = v dL/dv`` unit by unit), so the shift along ``u`` vanishes. Tested against
``jax.hessian`` of the decayed loss in tests/test_weight_decay.py.

Groups of units (signed output weights). The derivation only uses that the units moved are
identical: for a GROUP G of identical units (same ``u`` and ``v``) inside any network, the
directions that move the units of G by ``a_j t`` with ``sum_{j in G} a_j = 0`` (the others
fixed) see ``(a . a') t^T B_G t'`` with ``B_G`` built from G's ``u``, ``v`` and the WHOLE
network's ``l_n``. With output weights ``v_j = s_j v`` of random signs the units fall into two
such groups; S_G carries the factor ``l_n . v_G``, so where the unsigned S is positive definite
(the units heal) a group of the other sign meets a different end point whose S_G can have a
negative eigenvalue: random biases then break the symmetry inside that group
(tests/test_signed_splitting.py).
"""

from __future__ import annotations

import numpy as np

__all__ = ["SplittingBlock", "antisymmetric_block", "is_symmetric_layer",
           "antisymmetric_basis", "antisymmetric_hessian"]


class SplittingBlock:
    """``S``, ``R``, ``B`` of :func:`antisymmetric_block` and B's spectrum.

    Attributes:
      S: ``(d+1, d+1)`` splitting matrix.  R: ``(d+1, n_out)``.  B: ``(d+1+n_out,)*2``.
      eigenvalues: eigenvalues of B, ascending (each with multiplicity ``width - 1`` in H).
      width: m.
      weight_decay: lambda of the decayed loss (module doc): B includes ``+ lambda I``.
    """

    def __init__(self, S, R, width, weight_decay: float = 0.0):
        self.S, self.R, self.width, self.weight_decay = S, R, width, float(weight_decay)
        n_out = R.shape[1]
        self.B = (np.block([[S, R], [R.T, np.zeros((n_out, n_out))]])
                  + self.weight_decay * np.eye(S.shape[0] + n_out))
        self.eigenvalues = np.linalg.eigvalsh(self.B)

    @property
    def lambda_min(self) -> float:
        return float(self.eigenvalues[0])

    @property
    def splitting_min(self) -> float:
        """lambda_min(S) (+ lambda with weight decay: the S-block of B): < 0 iff splitting the
        units along incoming directions alone lowers the (decayed) loss to second order."""
        return float(np.linalg.eigvalsh(self.S)[0]) + self.weight_decay


def is_symmetric_layer(params, atol: float = 0.0, units=None) -> bool:
    """Whether the hidden units of a one-hidden-layer ``params`` (or the subset ``units``, an
    index array or boolean mask) are identical (within atol)."""
    sel = slice(None) if units is None else np.asarray(units)
    W, b, V = (np.asarray(params[0]["W"])[sel], np.asarray(params[0]["b"])[sel],
               np.asarray(params[1]["W"])[:, sel])
    return bool(np.all(np.abs(W - W[:1]) <= atol) and np.all(np.abs(b - b[0]) <= atol)
                and np.all(np.abs(V - V[:, :1]) <= atol))


def antisymmetric_block(params, x, y, activation: str, loss: str,
                        units=None, weight_decay: float = 0.0) -> SplittingBlock:
    """The antisymmetric Hessian block ``B`` (module doc) of the training loss at ``params``.

    Args:
      params: one hidden layer, ``[{"W": (m, d), "b": (m,)}, {"W": (n_out, m), "b": (n_out,)}]``
        with identical hidden units (ValueError otherwise).
      x: ``(N, d)`` inputs; y: targets in the loss's format.
      activation, loss: registered names.
      units: ``None`` (every hidden unit) or a group of identical units (index array or
        boolean mask): the block of the directions antisymmetric within the group, the other
        units fixed (module doc, "Groups of units"); its ``width`` is the group's size.
      weight_decay: lambda >= 0 of the decayed loss ``L + (lambda / 2) ||theta||^2`` (module
        doc, "Weight decay"): ``B + lambda I``, S and R taken at ``params``.
    """
    import jax
    import jax.numpy as jnp

    from jaxsym.core import nn
    from jaxsym.core.activations import get_activation

    if len(params) != 2:
        raise ValueError(f"antisymmetric_block needs one hidden layer, got {len(params) - 1}")
    if not is_symmetric_layer(params, units=units):
        raise ValueError("antisymmetric_block needs identical hidden units (a symmetric point)")
    index = np.arange(params[0]["W"].shape[0])
    group = index if units is None else index[np.asarray(units)]
    if group.size == 0:
        raise ValueError("antisymmetric_block: the unit group is empty")
    x = np.asarray(x, np.float64)
    act = get_activation(activation)
    j = int(group[0])
    w, b0 = np.asarray(params[0]["W"][j], np.float64), float(params[0]["b"][j])
    v = np.asarray(params[1]["W"][:, j], np.float64)
    xt = np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)
    z = xt @ np.concatenate([w, [b0]])
    outputs = nn.apply(params, jnp.asarray(x), activation)
    dl = np.asarray(jax.grad(lambda f: nn.loss_fn(loss)(f, y))(outputs), np.float64)
    S = (xt * ((dl @ v) * act.d2g(z))[:, None]).T @ xt
    R = (xt * act.dg(z)[:, None]).T @ dl
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    return SplittingBlock(S, R, width=int(group.size), weight_decay=weight_decay)


def antisymmetric_basis(params) -> np.ndarray:
    """An orthonormal basis ``(n_params, k)`` of the antisymmetric subspace of ``params``' raveled
    parameter space (the kernel of :func:`jaxsym.theory.saddle.symmetric_projection`), any
    depth."""
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    from jaxsym.theory.saddle import symmetric_projection

    flat, unravel = ravel_pytree(params)
    project = jax.jit(lambda v: ravel_pytree(symmetric_projection(unravel(v)))[0])
    P = np.stack([np.asarray(project(e)) for e in jnp.eye(flat.size, dtype=flat.dtype)], axis=1)
    values, vectors = np.linalg.eigh(0.5 * (P + P.T))
    return vectors[:, values < 0.5]


def antisymmetric_hessian(params, x, y, activation: str, loss: str):
    """``(Q^T H Q, leak)`` at a symmetric point of any depth: the training-loss Hessian restricted
    to the antisymmetric subspace (basis Q from :func:`antisymmetric_basis`; eigenvalues by
    ``numpy.linalg.eigvalsh``), and ``leak = ||(I - Q Q^T) H Q|| / ||H Q||``, which is 0 when the
    subspace is invariant under H (true at every symmetric point: the Gauss-Newton term and
    the symmetric-antisymmetric cross terms vanish, as in the one-layer derivation; with two or
    more hidden layers, though, the block couples the layers' antisymmetric directions through
    the unit-diagonal second derivatives of f, so it is no longer ``I ⊗ B`` of one small B)."""
    import jax
    from jax.flatten_util import ravel_pytree

    from jaxsym.core import train

    flat, unravel = ravel_pytree(params)
    H = np.asarray(jax.hessian(lambda th: train.loss_of_params(unravel(th), x, y, activation,
                                                               loss))(flat), np.float64)
    H = 0.5 * (H + H.T)
    Q = antisymmetric_basis(params)
    HQ = H @ Q
    leak = np.linalg.norm(HQ - Q @ (Q.T @ HQ)) / max(np.linalg.norm(HQ), 1e-300)
    return Q.T @ HQ, float(leak)
