"""Escape from the symmetric saddle: where the log-law comes from, and its predicted slope.

1. **Saxe et al. (2013)**, NumPy: the exact gradient-flow solution for a 1-D two-layer linear
   network ``y_hat = w2 w1 x`` trained on input-output correlation ``s`` with time constant
   ``tau``. With balanced weights (``w1 = w2``) the product ``u = w1 w2`` obeys the logistic flow
   ``tau du/dt = 2 u (s - u)``, whose time to go from ``u0`` to ``u_f`` is
   ``t = (tau / 2s) ln[u_f (s - u0) / (u0 (s - u_f))]`` (9.21024 for s = tau = 1, u0 = 1e-4,
   u_f = 1 - 1e-4): the escape from the saddle u = 0 costs ~ (tau / 2s) ln(1/u0).

2. **The collapsed saddle of an MLP**, JAX (use float64): a network whose hidden units start
   identical (``sigma_b = 0``) keeps them identical and, under full-batch gradient descent,
   converges to a critical point ``theta*`` of the loss restricted to the symmetric subspace
   (:func:`collapsed_point`). In the full parameter space ``theta*`` is a saddle: the Hessian
   ``H = d^2 L / d theta^2`` (``jax.hessian`` on the raveled parameters) has a negative
   eigenvalue ``lambda_min`` whose eigenvectors are *antisymmetric* (orthogonal to the symmetric
   subspace: units move apart), with multiplicity ``width - 1`` for one hidden layer (the unit
   permutation group acts on the antisymmetric subspace as ``width - 1`` copies of one block)
   (:func:`saddle_spectrum`).

   Near ``theta*`` gradient descent is ``delta <- (I - lr H) delta``, so an antisymmetric
   perturbation of size ``sigma`` (the random biases) grows by ``r = 1 + lr |lambda_min|`` per
   step and reaches O(1) after ``log(1/sigma) / log(r)`` steps: the log-law
   ``T = a + b log10(1/sigma)`` with ``b = ln 10 / ln r`` (:func:`predicted_slope`).
   Heavy-ball momentum ``beta`` (optax ``sgd(lr, momentum=beta)``) has two-step linear dynamics
   ``delta_{t+1} = delta_t + lr |lambda| delta_t + beta (delta_t - delta_{t-1})``, whose growth
   factor is the largest root of ``r^2 - (1 + beta + lr |lambda|) r + beta = 0`` (about
   ``1 + lr |lambda| / (1 - beta)`` for small ``lr |lambda|``). Adam has no such constant:
   at the saddle the gradient vanishes, its second-moment estimate decays like ``beta2^t`` and
   the per-coordinate step ``lr / (sqrt(v) + eps)`` keeps growing (towards ``lr / eps``), so the
   escape accelerates instead of proceeding at a fixed rate and the slope is not set by ``lambda_min`` alone.

   The prediction holds once the symmetric trajectory is close to ``theta*``: on its way there
   the local growth rate is larger (:func:`linearised_growth` measures it along the trajectory),
   so a measured slope matches ``b`` only for ``sigma`` small enough that the escape happens
   after the approach. ``jaxsym study`` runs ``experiments/saddle_slope.toml`` for that check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


__all__ = ["saxe_escape_time", "simulate_balanced_linear", "collapsed_point", "saddle_spectrum",
           "growth_factor", "predicted_slope", "linearised_growth", "symmetric_projection",
           "SaddleSpectrum", "SaddleAnalysis", "SaddleNotReached"]


def saxe_escape_time(s: float, tau: float, u0: float, u_final: float) -> float:
    """Analytic time for ``u = w1 w2`` to go from ``u0`` to ``u_final`` (0 < u0 < u_final < s)."""
    if not 0 < u0 < u_final < s:
        raise ValueError(f"need 0 < u0 < u_final < s, got u0={u0}, u_final={u_final}, s={s}")
    return tau / (2 * s) * np.log(u_final * (s - u0) / (u0 * (s - u_final)))


def simulate_balanced_linear(s: float, tau: float, u0: float, u_final: float,
                             dt: float = 1e-4, max_time: float = 1e4) -> float:
    """Gradient flow of ``L = (s - w1 w2)^2 / 2`` from ``w1 = w2 = sqrt(u0)`` (classical RK4 on
    ``tau w1' = w2 (s - w1 w2)``, ``tau w2' = w1 (s - w1 w2)``); returns the time at which
    ``w1 w2`` reaches ``u_final``, linearly interpolated within the last step."""
    w = np.array([np.sqrt(u0), np.sqrt(u0)])

    def flow(v):
        residual = s - v[0] * v[1]
        return np.array([v[1] * residual, v[0] * residual]) / tau

    t = 0.0
    while t < max_time:
        k1 = flow(w)
        k2 = flow(w + 0.5 * dt * k1)
        k3 = flow(w + 0.5 * dt * k2)
        k4 = flow(w + dt * k3)
        nxt = w + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        u, u_next = w[0] * w[1], nxt[0] * nxt[1]
        if u_next >= u_final:
            return t + dt * (u_final - u) / (u_next - u)
        w, t = nxt, t + dt
    return float("inf")


# ---------------------------------------------------------------------------------------------
# The collapsed saddle of an MLP (JAX)
# ---------------------------------------------------------------------------------------------

def _loss_and_ravel(params, x, y, activation: str, loss: str, weight_decay: float = 0.0):
    """``(flat, unravel, objective)``: the raveled params and the training loss of the flat
    vector, plus ``(weight_decay / 2) ||theta||^2`` when ``weight_decay`` > 0 (the objective
    whose gradient the decayed optimizer follows, :func:`jaxsym.core.train.make_optimizer`)."""
    from jax.flatten_util import ravel_pytree

    from jaxsym.core import train

    flat, unravel = ravel_pytree(params)

    def objective(theta):
        value = train.loss_of_params(unravel(theta), x, y, activation, loss)
        if weight_decay:
            value = value + 0.5 * weight_decay * (theta @ theta)
        return value

    return flat, unravel, objective


def collapsed_point(params, x, y, activation: str, loss: str, learning_rate: float,
                    max_steps: int = 200_000, grad_tol: float = 1e-12, project: bool = True,
                    weight_decay: float = 0.0):
    """Run full-batch gradient descent from ``params`` until ``||grad L|| <= grad_tol``
    (``L`` with ``(weight_decay / 2) ||theta||^2`` added when ``weight_decay`` > 0).

    Started from a symmetric network (identical hidden units, e.g. constant weights and zero
    biases) it stays symmetric in exact arithmetic, so it ends at the collapsed critical point
    ``theta*``. In floating point the saddle amplifies rounding asymmetry (it can escape after
    thousands of steps), so with ``project`` each iterate is mapped back onto the symmetric
    subspace (:func:`symmetric_projection`), which leaves an exactly symmetric trajectory
    unchanged.

    Args:
      params: the MLP pytree ``[{"W": (n_out, n_in), "b": (n_out,)}, ...]`` (use float64).
      x, y: training inputs ``(n, n_in)`` and targets in the loss's format.
      activation, loss: registered names.
      learning_rate: gradient-descent step.
      max_steps: give up after this many steps.
      grad_tol: stop when the Euclidean gradient norm is at most this.
      project: project every iterate onto the symmetric subspace.

    Returns:
      ``(params, steps, grad_norm)``: the final parameters, steps taken and final gradient norm
      (``grad_norm > grad_tol`` means ``max_steps`` was reached first).
    """
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    flat, unravel, objective = _loss_and_ravel(params, x, y, activation, loss, weight_decay)
    grad = jax.grad(objective)

    def cond(state):
        _, t, g = state
        return (t < max_steps) & (jnp.linalg.norm(g) > grad_tol)

    def body(state):
        theta, t, g = state
        theta = theta - learning_rate * g
        if project:
            theta = ravel_pytree(symmetric_projection(unravel(theta)))[0]
        return theta, t + 1, grad(theta)

    theta, steps, g = jax.jit(lambda th: jax.lax.while_loop(cond, body, (th, 0, grad(th))))(flat)
    return unravel(theta), int(steps), float(jnp.linalg.norm(g))


def symmetric_projection(params):
    """Orthogonal projection of a parameter pytree onto the symmetric subspace.

    The symmetric subspace holds the parameters invariant under permuting the units of every
    hidden layer: layer l's rows are averaged when its outputs are hidden units (l < L) and its
    columns when its inputs are (l > 1); hidden biases are averaged. A vector ``v`` is
    *antisymmetric* when ``symmetric_projection(v) = 0``.
    """
    depth = len(params)
    out = []
    for i, layer in enumerate(params):
        W, b = layer["W"], layer["b"]
        if i < depth - 1:
            W = W.mean(axis=0, keepdims=True) + 0 * W
            b = b.mean() + 0 * b
        if i > 0:
            W = W.mean(axis=1, keepdims=True) + 0 * W
        out.append({"W": W, "b": b})
    return out


@dataclass(frozen=True)
class SaddleSpectrum:
    """The Hessian spectrum at a critical point (see :func:`saddle_spectrum`).

    Attributes:
      loss: training loss at the point.
      grad_norm: Euclidean gradient norm there.
      eigenvalues: all Hessian eigenvalues, ascending, shape ``(n_params,)``.
      lambda_min: the most negative eigenvalue.
      multiplicity: how many eigenvalues lie within ``rtol * |lambda_min|`` of it.
      symmetric_fraction: max over an orthonormal basis of that eigenspace of
        ``||P_sym v|| / ||v||`` (0 for antisymmetric eigenvectors).
      eigenvectors: that basis, shape ``(n_params, multiplicity)``.
    """

    loss: float
    grad_norm: float
    eigenvalues: np.ndarray
    lambda_min: float
    multiplicity: int
    symmetric_fraction: float
    eigenvectors: np.ndarray


def saddle_spectrum(params, x, y, activation: str, loss: str, rtol: float = 1e-6,
                    weight_decay: float = 0.0) -> SaddleSpectrum:
    """Hessian of the training loss at ``params`` (``jax.hessian`` on the raveled parameters,
    in the parameters' dtype), its eigen-decomposition (``numpy.linalg.eigh``), the most negative
    eigenvalue, its multiplicity and how symmetric its eigenvectors are; with ``weight_decay``
    of the decayed loss (its Hessian is the plain one + ``weight_decay * I``)."""
    import jax
    from jax.flatten_util import ravel_pytree

    flat, unravel, objective = _loss_and_ravel(params, x, y, activation, loss, weight_decay)
    hessian = np.asarray(jax.jit(jax.hessian(objective))(flat), np.float64)
    hessian = 0.5 * (hessian + hessian.T)
    eigenvalues, vectors = np.linalg.eigh(hessian)
    lam = float(eigenvalues[0])
    close = np.abs(eigenvalues - lam) <= rtol * max(abs(lam), np.finfo(float).tiny)
    basis = vectors[:, close]
    fractions = [float(np.linalg.norm(ravel_pytree(symmetric_projection(unravel(v)))[0]))
                 for v in basis.T]
    value, grad = jax.value_and_grad(objective)(flat)
    return SaddleSpectrum(float(value), float(np.linalg.norm(grad)), eigenvalues, lam,
                          int(close.sum()), max(fractions), basis)


def growth_factor(learning_rate: float, lambda_min: float, optimizer: str = "sgd",
                  momentum: float = 0.9) -> float:
    """Per-step growth ``r`` of the unstable direction near a saddle with curvature
    ``lambda_min < 0``: ``1 + lr |lambda_min|`` for gradient descent ("sgd"); the largest root of
    ``r^2 - (1 + beta + lr |lambda|) r + beta`` for heavy-ball "momentum" ``beta``.

    Raises:
      ValueError: ``lr * |lambda_min|`` not positive, or an optimizer without a constant rate
        (Adam: see the module docstring).
    """
    rate = learning_rate * abs(lambda_min)
    if not rate > 0:
        raise ValueError("growth_factor needs learning_rate * |lambda_min| > 0")
    if optimizer == "sgd":
        return 1.0 + rate
    if optimizer == "momentum":
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        trace = 1.0 + momentum + rate
        return 0.5 * (trace + math.sqrt(trace * trace - 4.0 * momentum))
    raise ValueError(f"no constant escape rate for optimizer {optimizer!r}; allowed: sgd, "
                     f"momentum")


def predicted_slope(learning_rate: float, lambda_min: float, optimizer: str = "sgd",
                    momentum: float = 0.9) -> float:
    """Steps per decade of smaller sigma: ``ln 10 / ln r`` with ``r`` from :func:`growth_factor`
    (``ln 10 / ln(1 + lr |lambda_min|)`` for gradient descent)."""
    r = growth_factor(learning_rate, lambda_min, optimizer, momentum)
    return math.log(10.0) / math.log(r)


def _zero_tangent(leaf):
    import jax
    import jax.numpy as jnp

    if jnp.issubdtype(leaf.dtype, jnp.inexact):
        return jnp.zeros_like(leaf)
    return np.zeros(leaf.shape, jax.dtypes.float0)  # integer state (Adam's step count)


def linearised_growth(params, direction, x, y, activation: str, loss: str,
                      learning_rate: float, steps: int, optimizer: str = "sgd") -> np.ndarray:
    """Per-step growth of a perturbation along the training trajectory from ``params``.

    Propagates a tangent ``(delta, 0)`` of the state ``(theta, optimizer state)`` with the
    Jacobian of one full-batch optax step (``jax.jvp``; optimizer kinds of
    :func:`jaxsym.core.train.make_optimizer`), renormalising each step; returns
    ``log(||delta_{t+1}|| / ||delta_t||)`` (parameter part) for ``t = 0..steps-1``. At the
    collapsed saddle an antisymmetric ``direction`` settles at ``log r`` (:func:`growth_factor`);
    earlier on the trajectory the rate differs: the transient that limits which sigma values obey
    the predicted slope. For Adam it does not settle.
    """
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    from jaxsym.core import train

    flat, _, objective = _loss_and_ravel(params, x, y, activation, loss)
    delta = ravel_pytree(direction)[0].astype(flat.dtype)
    tx = train.make_optimizer(optimizer, learning_rate)
    update = train.update(tx, objective)  # the study's optax update, on the flat theta

    def step_map(state):
        return update(state)[0]

    def body(carry, _):
        state, tangent = carry
        state, tangent = jax.jvp(step_map, (state,), (tangent,))
        norm = jnp.linalg.norm(tangent[0])
        tangent = jax.tree.map(lambda t: t / norm if t.dtype != jax.dtypes.float0 else t, tangent)
        return (state, tangent), jnp.log(norm)

    def run(theta, d):
        state = (theta, tx.init(theta))
        tangent = (d / jnp.linalg.norm(d), jax.tree.map(_zero_tangent, state[1]))
        return jax.lax.scan(body, (state, tangent), None, length=steps)[1]

    return np.asarray(jax.jit(run)(flat, delta))


@dataclass(frozen=True)
class SaddleAnalysis:
    """Saddle theory for the (single) network of a study; see
    :func:`jaxsym.theory.predict.analyse_saddle`.

    Attributes:
      spectrum: :class:`SaddleSpectrum` at the collapsed point.
      steps_to_saddle: gradient-descent steps from the symmetric init to ``||grad|| <= grad_tol``.
      learning_rate, optimizer: the study's.
      slope: predicted steps per decade of smaller sigma_b (None for Adam).
      local_slope: ``ln 10 / (per-step log growth)`` of a random antisymmetric bias
        perturbation along the symmetric trajectory from the init, shape ``(trajectory_steps,)``:
        the slope a sigma whose escape happens at step t would show.
    """

    spectrum: SaddleSpectrum
    steps_to_saddle: int
    learning_rate: float
    optimizer: str
    slope: float | None
    local_slope: np.ndarray
    reached: bool = True
    grad_norm: float = 0.0


class SaddleNotReached(ValueError):
    """Gradient descent from the symmetric init did not reach the collapsed critical point, so
    the Hessian there predicts nothing about the sweep."""
