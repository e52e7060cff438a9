"""Linearised escape: the whole curve of time-to-break against sigma_b, predicted from ONE
symmetric trajectory.

Setting. Hidden units start identical except for their biases, ``b_l = sigma_b * N(0, I)`` in
hidden layer l of width ``m_l``. Write ``b_l = bbar_l 1 + d_l`` with ``d_l`` orthogonal to 1:
the mean moves the symmetric trajectory (to first order it stays symmetric), the deviation
``d_l`` is an *antisymmetric* perturbation. To first order in sigma_b it evolves with the
Jacobian ``J_t`` of one optimizer step along the symmetric trajectory ``theta_t`` (the run
from ``sigma_b = 0``, for SGD, heavy-ball momentum or Adam, optimizer state included):
``delta_{t+1} = J_t delta_t``.

Equivariance makes this one small computation. ``J_t`` commutes with permutations of the units
(``theta_t`` is symmetric), so a perturbation ``d_l ⊗ e_b`` (unit j's bias moved by
``d_lj``) stays of the form "unit j moved by ``d_lj u_t``" for ONE per-unit vector ``u_t``,
whatever ``d_l``; and the antisymmetric parts of different hidden layers belong to different
irreducible representations of the permutation group, so they do not mix at first order.
Hence hidden layer l's incoming weight matrix is, to first order,

    W_l(t) = 1 c_t^T + d_l u_t^T,          d_l ⊥ 1,   ||d_l||^2 ~ sigma_b^2 chi^2_{m_l - 1},

with ``c_t`` the symmetric row and ``u_t`` the response of unit-norm ``d`` (both computed
once, :func:`linearised_escape`). Its two singular values are those of the 2 x n matrix
``[sqrt(m) c_t ; a u_t]`` with ``a = ||d_l||``: ``s1 s2 = sqrt(m) a |c x u|`` and
``s1^2 + s2^2 = m |c|^2 + a^2 |u|^2`` (``|c x u|^2 = |c|^2 |u|^2 - (c.u)^2``). The engine
calls layer l broken at the first step where ``s2/s1 > theta`` (``thresholds.diversity``); with
``q = theta / (1 + theta^2)`` that happens once ``a`` exceeds the smaller root of
``q |u|^2 a^2 - sqrt(m) |c x u| a + q m |c|^2 = 0``,

    a*_t = 2 q sqrt(m) |c|^2 / (|c x u| + sqrt(|c x u|^2 - 4 q^2 |c|^2 |u|^2))

(no root, ``a*_t = inf``, while ``|c x u| < 2 q |c| |u|``: the deviation is too parallel to
the rows to raise the rank). So the predicted time to break of a network is
``T(a) = min{t : a > a*_t}``, a decreasing function of ``a = ||d_l||`` alone, and

    P(T <= t) = P(chi^2_{m-1} > (A_t / sigma_b)^2),      A_t = min_{s <= t} a*_s,

    median T = min{t : A_t <= sigma_b sqrt(median chi^2_{m-1})}.

This is the whole curve at every sigma_b, not only the asymptotic log-law slope; at the
collapsed saddle ``log a*_t`` falls by ``log r`` per step (:func:`jaxsym.theory.saddle.
growth_factor`), which is that slope, but the prediction also covers the approach to the saddle
and the large-sigma_b end where the break happens early.

Deeper networks. For a hidden layer above the first, ``c_t`` and ``u_t`` are both constant
across the incoming units (the layer below is symmetric to first order), so ``c_t x u_t = 0``:
the layer's weight matrix stays RANK ONE to first order, ``a*_t = inf``. Its directions can only
diversify through second-order terms (products of the lower layer's deviation and its own,
``~ sigma_b^2``), which is why with two hidden layers the upper layer stays collapsed long after
the first has broken.

Norm mode (a second-order estimate). When ``u_t`` stays (nearly) parallel to ``c_t``
(``|c x u| < 2 q |c| |u|``, e.g. on data with a mirror symmetry that the constant initial
weights share), the first-order deviation changes the units' NORMS, not their directions:
``a*_t = inf``, yet the deviation can still grow exponentially. The direction diversity then
comes from the second-order term, quadratic in the relative deviation
``r = a |u_t| / (sqrt(m) |c_t|)``; the estimate used is that s2/s1 ~ r^2 crosses theta when
``r = sqrt(theta)``, i.e. at ``a = n_t = sqrt(theta) sqrt(m) |c_t| / |u_t|`` (first hidden
layer only, and only where ``a*_t = inf``; :meth:`EscapePrediction.first_order` drops it).

Kinks (piecewise-linear g: relu, leaky_relu). g'' is 0 except a delta at 0, which the
forward-mode tangent does not see: a unit whose pre-activation on some sample lies on the other
side of the kink than the symmetric unit's gets a different gradient, a difference the
linearisation leaves out. To first order unit j's pre-activation on sample n is
``z_n(t) + d_j delta_n(t)`` (``delta_n`` the tangent's, per unit of bias deviation), so it is
on the other side iff ``d_j`` lies beyond ``tau_n(t) = -z_n(t) / delta_n(t)``. The smallest
positive and (in size) negative margins over the samples and steps so far, ``tau+`` and
``tau-`` (``log_kink_margin``), give :meth:`EscapePrediction.p_kink_by`, the probability that
some unit crosses a kink differently by step t. It is necessary for a kink-driven break, not
sufficient (:mod:`jaxsym.theory.classify`).

Validity: first order in the deviation. At the break the deviation is ``~ theta`` relative to
the rows (1e-2 by default), so the neglected terms are that small; the symmetric trajectory
from ``sigma_b = 0`` stands in for the one from the actual mean bias (an O(sigma_b) shift).
Adam: its per-coordinate normalisation is differentiable where the second moment is positive;
the linearisation is then exact to first order too (its growth is not a constant rate, which is
why no log-law slope exists for Adam, but the curve is still predicted: tests/test_escape.py
checks every network of a small Adam sweep).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from jaxsym.core.precision import with_float64

__all__ = ["EscapePrediction", "PooledPrediction", "linearised_escape", "break_amplitude",
           "predict_study", "predict_pooled", "compare", "deviation_norms", "network_errors",
           "MEDIAN_TOLERANCE"]


def break_amplitude(c, u, m: int, threshold: float):
    """``a*``: the smallest ``a = ||d||`` with ``s2/s1 > threshold`` for ``1 c^T + d u^T``
    (``d ⊥ 1``, ``m`` rows), from the closed form in the module doc; ``inf`` when no ``a``
    reaches it. ``c, u``: ``(..., n)`` arrays (numpy or jax); returns ``(...)``."""
    xp = np if isinstance(c, np.ndarray) else __import__("jax.numpy", fromlist=["numpy"])
    q = threshold / (1.0 + threshold * threshold)
    cc = xp.sum(c * c, axis=-1)
    uu = xp.sum(u * u, axis=-1)
    outer = c[..., :, None] * u[..., None, :]
    cross = xp.sqrt(0.5 * xp.sum((outer - xp.swapaxes(outer, -1, -2)) ** 2, axis=(-2, -1)))
    disc = cross * cross - 4.0 * q * q * cc * uu
    ok = (disc >= 0) & (uu > 0) & (cc > 0) & (cross > 0)
    denominator = xp.where(ok, cross + xp.sqrt(xp.where(ok, disc, 0.0)), 1.0)
    return xp.where(ok, 2.0 * q * math.sqrt(m) * cc / denominator, xp.inf)


@dataclass(frozen=True)
class EscapePrediction:
    """The linearised escape of one network configuration (see the module doc).

    Attributes:
      widths: hidden layer widths ``(m_1, ..., m_{L-1})``.
      threshold: the diversity threshold theta.
      log_amplitude: ``(n_hidden, steps + 1)``: ``log a*_t`` per hidden layer at ``t = 0..steps``
        (``inf`` where the layer cannot break at step t to first order).
      loss: ``(steps + 1,)`` training loss along the symmetric trajectory.
      log_norm_amplitude: ``(n_hidden, steps + 1)``: ``log n_t`` with
        ``n_t = sqrt(theta) sqrt(m) |c_t| / |u_t|``, the ``||d||`` at which the first-order
        deviation is ``sqrt(theta)`` of the rows (first hidden layer; inf above). Used where
        ``a*_t = inf`` (the *norm mode*, see the module doc) unless ``norm_mode`` is False.
      norm_mode: whether the norm-mode estimate fills in where ``a*_t = inf``.
    """

    widths: tuple[int, ...]
    threshold: float
    log_amplitude: np.ndarray
    loss: np.ndarray
    log_norm_amplitude: np.ndarray | None = None
    norm_mode: bool = True
    log_kink_margin: np.ndarray | None = None

    def p_kink_by(self, sigma_b: float, t: int | None = None) -> float:
        """P(some unit of hidden layer 1 has a pre-activation on the other side of the kink
        than the symmetric unit's at some step <= t (default: the budget)), to first order
        in the bias deviations (module doc, "Kinks"): with ``tau+-`` the smallest margins
        (per unit of bias deviation) over the samples and steps so far and
        ``d_j ~ N(0, sigma_b^2 (1 - 1/m))``, each unit crosses with probability
        ``p = Phi(-tau+ / s) + Phi(-tau- / s)``, and some unit with ``1 - (1 - p)^m``."""
        if self.log_kink_margin is None or sigma_b <= 0:
            return 0.0
        t = self.steps if t is None else min(int(t), self.steps)
        margins = self.log_kink_margin[:, : t + 1]
        if self.diverged_at is not None:
            margins = margins[:, : self.diverged_at]
        if margins.size == 0:
            return 0.0
        m = self.widths[0]
        scale = sigma_b * np.sqrt(1.0 - 1.0 / m)
        tau = np.exp(np.nanmin(np.where(np.isnan(margins), np.inf, margins), axis=1))
        p_unit = min(1.0, float(np.sum(sps.norm.sf(tau / scale))))
        return float(1.0 - (1.0 - p_unit) ** m)

    @property
    def steps(self) -> int:
        return self.log_amplitude.shape[1] - 1

    @property
    def diverged_at(self) -> int | None:
        """First step at which the symmetric trajectory's loss is not finite (None: never).
        Beyond it the prediction holds no information (``a*_t`` counts as inf there)."""
        bad = np.flatnonzero(~np.isfinite(self.loss))
        return int(bad[0]) if bad.size else None

    def first_order(self) -> "EscapePrediction":
        """The same prediction without the norm-mode estimate (first order alone)."""
        return dataclasses.replace(self, norm_mode=False)

    def _running_min(self, layer: int) -> np.ndarray:
        log_a = np.where(np.isnan(self.log_amplitude[layer]), np.inf, self.log_amplitude[layer])
        if self.norm_mode and self.log_norm_amplitude is not None:
            norm = np.where(np.isnan(self.log_norm_amplitude[layer]), np.inf,
                            self.log_norm_amplitude[layer])
            log_a = np.where(np.isfinite(log_a), log_a, norm)
        if self.diverged_at is not None:
            log_a[self.diverged_at:] = np.inf
        return np.minimum.accumulate(log_a)

    def p_broken_by(self, sigma_b, layer: int = 0, t: int | None = None) -> np.ndarray:
        """P(layer ``layer`` broken by step ``t``) (default: the last step) for each sigma_b:
        ``chi2.sf((A_t / sigma_b)^2, m - 1)``."""
        sigma = np.asarray(sigma_b, np.float64)
        log_a = self._running_min(layer)[self.steps if t is None else int(t)]
        m = self.widths[layer]
        if m < 2 or not np.isfinite(log_a):
            return np.zeros_like(sigma)
        with np.errstate(divide="ignore"):
            ratio2 = np.exp(2.0 * (log_a - np.log(sigma)))
        return np.where(sigma > 0, sps.chi2.sf(ratio2, m - 1), 0.0)

    def break_time(self, amplitude, layer: int = 0) -> np.ndarray:
        """``T(a) = min{t : a > a*_t}`` for deviation norms ``a = ||d_l||`` (array); ``inf``
        where not within ``steps``: the predicted time to break of ONE network."""
        a = np.atleast_1d(np.asarray(amplitude, np.float64))
        running = self._running_min(layer)
        with np.errstate(divide="ignore"):
            index = np.searchsorted(-running, -np.log(a), side="right")
        # running is non-increasing: index = number of steps with log a*_t >= log a
        return np.where(index <= self.steps, index, np.inf).astype(np.float64).reshape(
            np.shape(amplitude))

    def cdf(self, sigma_b: float, layer: int = 0) -> np.ndarray:
        """``P(T <= t)`` for ``t = 0..steps``: ``chi2.sf((A_t / sigma_b)^2, m - 1)``."""
        m = self.widths[layer]
        if m < 2 or sigma_b <= 0:
            return np.zeros(self.steps + 1)
        with np.errstate(over="ignore"):
            ratio2 = np.exp(2.0 * (self._running_min(layer) - math.log(sigma_b)))
        return sps.chi2.sf(ratio2, m - 1)

    def time_quantile(self, sigma_b: float, q: float = 0.5, layer: int = 0) -> float:
        """The predicted q-quantile of layer ``layer``'s time to break at ``sigma_b``: the first
        step with ``A_t <= sigma_b sqrt(chi2.isf(q, m - 1))``; ``inf`` if beyond ``steps``."""
        m = self.widths[layer]
        if m < 2 or sigma_b <= 0:
            return math.inf
        a_q = math.log(sigma_b) + 0.5 * math.log(sps.chi2.isf(q, m - 1))
        hit = np.nonzero(self._running_min(layer) < a_q)[0]
        return float(hit[0]) if hit.size else math.inf

    def median_time(self, sigma_b: float, layer: int = 0) -> float:
        """Predicted median time to break of hidden layer ``layer`` (``inf``: not by ``steps``)."""
        return self.time_quantile(sigma_b, 0.5, layer)

    def slope(self, layer: int = 0, window: int = 200) -> float:
        """Steps per decade of smaller sigma_b at the end of the run: ``ln 10`` over the mean
        per-step fall of ``log a*`` over the last ``window`` steps (``inf`` if it does not
        fall)."""
        tail = self.log_amplitude[layer, -window - 1:]
        if not np.all(np.isfinite(tail)):
            return math.inf
        fall = (tail[0] - tail[-1]) / (len(tail) - 1)
        return math.log(10.0) / fall if fall > 0 else math.inf


class PooledPrediction:
    """The prediction for networks spread evenly over several data draws: the mixture of the
    per-draw predictions, ``P(T <= t) = mean_k P_k(T <= t)`` (``draws``: a list of
    :class:`EscapePrediction` with one step count)."""

    def __init__(self, draws):
        self.draws = list(draws)
        self.steps = self.draws[0].steps

    def cdf(self, sigma_b: float, layer: int = 0) -> np.ndarray:
        return np.mean([d.cdf(sigma_b, layer) for d in self.draws], axis=0)

    def p_broken_by(self, sigma_b, layer: int = 0, t: int | None = None) -> np.ndarray:
        return np.mean([d.p_broken_by(sigma_b, layer, t) for d in self.draws], axis=0)

    def time_quantile(self, sigma_b: float, q: float = 0.5, layer: int = 0) -> float:
        """First step at which the mixture's ``P(T <= t)`` reaches ``q`` (inf: never)."""
        hit = np.nonzero(self.cdf(sigma_b, layer) >= q)[0]
        return float(hit[0]) if hit.size else math.inf

    def median_time(self, sigma_b: float, layer: int = 0) -> float:
        return self.time_quantile(sigma_b, 0.5, layer)


def linearised_escape(params, x, y, activation: str, loss: str, optimizer: str,
                      learning_rate: float, steps: int, threshold: float = 1e-2
                      ) -> EscapePrediction:
    """Propagate each hidden layer's unit-norm antisymmetric bias perturbation along the
    symmetric trajectory from ``params`` and return ``a*_t`` (module doc) for every step.

    Args:
      params: a SYMMETRIC network (identical units in every hidden layer: constant or zero
        weights, equal biases), ``[{"W": (n_out, n_in), "b": (n_out,)}, ...]``; run in its
        dtype (use float64). Every iterate is projected back onto the symmetric subspace.
      x, y: full training batch (the engine's full-batch step).
      activation, loss, optimizer: registered names (optimizer as in
        :func:`jaxsym.core.train.make_optimizer`).
      learning_rate, steps: as in the study.
      threshold: the study's ``thresholds.diversity``.
    """
    import jax.numpy as jnp

    n_hidden = len(params) - 1
    if n_hidden < 1:
        raise ValueError("linearised_escape needs at least one hidden layer")
    widths = tuple(int(p["b"].shape[0]) for p in params[:-1])
    if min(widths) < 2:
        raise ValueError(f"every hidden layer needs >= 2 units to break symmetry, got {widths}")
    program = _escape_program(widths, activation, loss, optimizer, int(steps), float(threshold))
    dtype = params[0]["W"].dtype
    amps, losses, kinks = program(params, x, y, jnp.asarray(learning_rate, dtype))
    amps = np.asarray(amps, np.float64)
    return EscapePrediction(widths, float(threshold), amps[0], np.asarray(losses, np.float64),
                            amps[1], log_kink_margin=np.asarray(kinks, np.float64))


@functools.lru_cache(maxsize=64)
def _escape_program(widths, activation, loss, optimizer, steps, threshold):
    """The jitted ``(params, x, y, learning_rate) -> (log a*_t, loss_t)`` of
    :func:`linearised_escape`: one compile per static configuration, reused across data
    draws and learning rates."""
    import jax
    import jax.numpy as jnp
    import optax

    from jaxsym.core import train
    from jaxsym.theory.saddle import _zero_tangent, symmetric_projection

    n_hidden = len(widths)

    def tangent_norm(tangent):
        return jnp.sqrt(sum(jnp.sum(leaf * leaf) for leaf in jax.tree.leaves(tangent[0])))

    def amplitudes(p, tangents, log_scale):
        out = []
        for l in range(n_hidden):
            W, T = p[l]["W"], tangents[l][0][l]["W"]
            d = jnp.zeros(widths[l], W.dtype).at[0].set(1.0).at[1].set(-1.0) / jnp.sqrt(2.0)
            u = d @ T
            a = break_amplitude(W[0], u, widths[l], threshold)
            uu = jnp.sum(u * u)
            norm = jnp.where(
                (uu > 0) & (l == 0),
                0.5 * jnp.log(threshold * widths[l] * jnp.sum(W[0] * W[0])
                              / jnp.where(uu > 0, uu, 1.0)), jnp.inf)
            out.append(jnp.stack([jnp.log(a), norm]) - log_scale[l])
        return jnp.stack(out, axis=1)  # (2, n_hidden)

    def kink_margins(p, tangents, log_scale, x):
        """log tau+ and log tau- of hidden layer 1 (module doc, "Kinks"): over the samples,
        the smallest positive and negative (in size) unit bias deviations that put a unit's
        pre-activation on the other side of 0 than the symmetric unit's, to first order."""
        W, b = p[0]["W"][0], p[0]["b"][0]
        TW, Tb = tangents[0][0][0]["W"], tangents[0][0][0]["b"]
        d = jnp.zeros(widths[0], W.dtype).at[0].set(1.0).at[1].set(-1.0) / jnp.sqrt(2.0)
        z = x @ W + b
        delta = (x @ (d @ TW) + d @ Tb) * jnp.exp(log_scale[0])
        safe = jnp.where(delta != 0, delta, 1.0)
        tau = jnp.where(delta != 0, -z / safe, jnp.inf)
        plus = jnp.min(jnp.where(tau > 0, tau, jnp.inf))
        minus = jnp.min(jnp.where(tau < 0, -tau, jnp.inf))
        return jnp.log(jnp.stack([plus, minus]))

    def run(p, x, y, learning_rate):
        tx = train.make_optimizer(optimizer, learning_rate)

        def objective(q):
            return train.loss_of_params(q, x, y, activation, loss)

        def step_map(state):
            q, opt_state = state
            value, grads = jax.value_and_grad(objective)(q)
            updates, opt_state = tx.update(grads, opt_state, q)
            return (optax.apply_updates(q, updates), opt_state), value

        def body(carry, _):
            state, tangents, log_scale = carry
            new_tangents, norms = [], []
            for l in range(n_hidden):
                (new_state, value), (tangent, _) = jax.jvp(step_map, (state,), (tangents[l],))
                norm = tangent_norm(tangent)
                tangent = jax.tree.map(
                    lambda t: t / norm if t.dtype != jax.dtypes.float0 else t, tangent)
                new_tangents.append(tangent)
                norms.append(norm)
            q, opt_state = new_state
            q = symmetric_projection(q)
            log_scale = log_scale + jnp.log(jnp.stack(norms))
            return ((q, opt_state), new_tangents, log_scale), (
                amplitudes(q, new_tangents, log_scale), value,
                kink_margins(q, new_tangents, log_scale, x))

        state = (p, tx.init(p))
        tangents = []
        for l in range(n_hidden):
            t_params = jax.tree.map(jnp.zeros_like, p)
            d = jnp.zeros(widths[l], p[l]["b"].dtype).at[0].set(1.0).at[1].set(-1.0)
            t_params[l]["b"] = d / jnp.sqrt(2.0)
            tangents.append((t_params, jax.tree.map(_zero_tangent, state[1])))
        log_scale = jnp.zeros(n_hidden, p[0]["W"].dtype)
        first = amplitudes(p, tangents, log_scale)
        first_kink = kink_margins(p, tangents, log_scale, x)
        (state, _, _), (amps, values, kinks) = jax.lax.scan(
            body, (state, tangents, log_scale), None, length=steps)
        final = objective(state[0])
        # amps: (steps, 2, n_hidden) -> (2, n_hidden, steps + 1); kinks -> (2, steps + 1)
        return (jnp.concatenate([first[:, :, None], jnp.moveaxis(amps, 0, -1)], axis=2),
                jnp.concatenate([values, final[None]]),
                jnp.concatenate([first_kink[:, None], kinks.T], axis=1))

    return jax.jit(run)


@with_float64
def predict_study(study, trajectory_steps: int | None = None, draw: int = 0) -> dict:
    """:func:`linearised_escape` for every configuration of a study: one prediction per static
    group and per distinct setting of the numeric knobs other than sigma_b (the prediction
    covers every sigma_b at once).

    The study must train full-batch (the prediction follows the deterministic full-batch
    trajectory), with constant or zero weights (identical units; other weight modes are skipped)
    and noise 0. Runs in float64 whatever the study's dtype (a prediction, not a replay), on
    data draw ``draw`` (task seed ``task.seed + draw``).

    Returns:
      ``{(categorical, knobs): EscapePrediction}`` with ``categorical`` the group's
      ``((axis, value), ...)`` and ``knobs`` a tuple of ``(knob, value)`` without sigma_b.

    Raises:
      ValueError: minibatch training.
    """
    import jax
    import jax.numpy as jnp

    from jaxsym.core import network
    from jaxsym.engine import sweep

    if study.get("train.batch_size") not in (0, study.get("task.n_train")):
        raise ValueError(f"{study.name}: the linearised escape needs full-batch training "
                         "(train.batch_size = 0)")
    task = study.make_task(draw)
    table = sweep.knob_table(study)
    others = [i for i, k in enumerate(network.KNOBS) if k != "sigma_b"]
    constant_modes = {network.WEIGHT_MODES.index(m) for m in ("constant", "zero")}
    out = {}
    for group in sweep.plan_groups(study, task):
        spec = group.spec
        data = sweep.task_data(task, spec.loss)
        x = data["x_train"].astype(jnp.float64)
        y = data["y_train"]
        y = y.astype(jnp.float64) if jnp.issubdtype(y.dtype, jnp.floating) else y
        for g in group.grid_indices:
            row = table[g]
            knobs = tuple((network.KNOBS[i], float(row[i])) for i in others)
            values = dict(knobs)
            if ((group.categorical, knobs) in out or values["noise"] > 0
                    or int(values["weight_mode"]) not in constant_modes):
                continue
            params = network.init_params(
                jax.random.key(0), {k: jnp.asarray(v, jnp.float64)
                                    for k, v in {**values, "sigma_b": 0.0}.items()},
                network.Architecture(spec.layer_sizes, spec.fan_in_scaled, "float64"))
            out[(group.categorical, knobs)] = linearised_escape(
                params, x, y, spec.activation, spec.loss, spec.optimizer,
                values["learning_rate"], trajectory_steps or spec.steps,
                spec.diversity_threshold)
    return out


@with_float64
def deviation_norms(study, seeds) -> np.ndarray:
    """``||b_1 - mean(b_1)||`` of hidden layer 1 of every network ``(grid point, seed)`` of a
    study, at sigma_b = 1 (the standard normal draw, which the engine scales by sigma_b), drawn
    exactly as the engine does (key ``fold_in(fold_in(key(root), grid index), seed index)``).

    Args:
      seeds: the seed indices (e.g. ``range(draw * count, (draw + 1) * count)``).

    Returns:
      ``(n_grid_points, len(seeds))`` float64 array, grid points in the flat (C) order.
    """
    import jax
    import jax.numpy as jnp

    from jaxsym.core import network
    from jaxsym.engine import sweep

    table = sweep.knob_table(study)
    seeds = np.asarray(list(seeds))
    root = jax.random.key(study.get("seeds.root"))
    norms = np.full((len(table), seeds.size), np.nan)
    for group in sweep.plan_groups(study, study.make_task(0)):
        arch = network.Architecture(group.spec.layer_sizes, group.spec.fan_in_scaled, "float64")

        def one(g, s, knobs, arch=arch):
            key = jax.random.fold_in(jax.random.fold_in(root, g), s)
            b = network.init_params(jax.random.split(key)[0], knobs, arch)[0]["b"]
            return jnp.linalg.norm(b - b.mean())

        batched = jax.jit(jax.vmap(one, in_axes=(None, 0, None)))
        for g in group.grid_indices:
            knobs = {k: jnp.asarray(1.0 if k == "sigma_b" else table[g][i], jnp.float64)
                     for i, k in enumerate(network.KNOBS)}
            norms[g] = np.asarray(batched(int(g), jnp.asarray(seeds, jnp.int32), knobs))
    return norms


def network_errors(ds, study, prediction: EscapePrediction, draw: int = 0) -> np.ndarray:
    """Measured minus predicted step to break of every network of data draw ``draw`` of a
    one-configuration run ``ds`` (grid: sigma_b only): ``(n_sigma, seeds per draw)``, inf or
    -inf where exactly one of the two is beyond the budget, nan where both are (``study``: the
    run's study, e.g. ``jaxsym.reporting.study_of(ds)``). Each network's
    prediction is ``T(sigma_b ||d||)`` from its own initial bias deviation (not the chi^2 law)."""
    count = study.get("seeds.count")
    seeds = range(draw * count, (draw + 1) * count)
    norms = deviation_norms(study, seeds)
    sigma = ds.sigma_b.values
    predicted = prediction.break_time(sigma[:, None] * norms.reshape(len(sigma), -1))
    sub = ds.isel(seed=list(seeds))
    measured = np.where(sub.broken.values, sub.time_to_break.values, np.inf).reshape(
        predicted.shape)
    with np.errstate(invalid="ignore"):
        return measured - predicted


def predict_pooled(study, trajectory_steps: int | None = None) -> dict:
    """:func:`predict_study` on every data draw of the study (``task.draws``), pooled:
    ``{(categorical, knobs): PooledPrediction}`` (one draw: a mixture of one)."""
    per_draw = [predict_study(study, trajectory_steps, draw)
                for draw in range(study.get("task.draws"))]
    return {key: PooledPrediction([p[key] for p in per_draw]) for key in per_draw[0]}


#: the whole-curve target: predicted median within this fraction of the measured KM median
MEDIAN_TOLERANCE = 0.05


def _row(cell, draw, sigma, prediction, one, layer) -> dict:
    from jaxsym.analysis import stats

    times = one.time_to_break_layer.isel(layer=layer).values
    broken = one.broken_layer.isel(layer=layer).values
    median = stats.median_time(times, broken)
    predicted = prediction.median_time(sigma, layer)
    low, high = stats.wilson_interval(int(broken.sum()), broken.size)
    both = bool(np.isfinite(predicted) and median.reached)
    return {"cell": cell, "draw": draw, "sigma_b": sigma, "predicted": predicted,
            "measured": median, "p_predicted": float(prediction.p_broken_by(sigma, layer)),
            "p_measured": float(broken.mean()), "p_low": float(low), "p_high": float(high),
            "n": int(broken.size),
            "agree": (abs(predicted - median.median)
                      <= max(MEDIAN_TOLERANCE * median.median, 1.0) if both else
                      not np.isfinite(predicted) and not median.reached),
            "error": (predicted - median.median) / median.median if both else None}


def compare(ds, predictions: dict | None = None, layer: int = 0) -> list[dict]:
    """Predicted against measured, for every cell (categorical grid point) and sigma_b of a
    result dataset whose grid axes are categorical ones and sigma_b.

    Measured: the Kaplan-Meier median of hidden layer ``layer``'s time to break
    (``time_to_break_layer``, censored at the budget) with its 95% CI, and the fraction broken
    by the budget with its Wilson interval. Predicted: :meth:`EscapePrediction.median_time` and
    :meth:`EscapePrediction.p_broken_by` at the budget (default predictions:
    :func:`predict_pooled`).

    Rows with ``draw = None`` pool every network of the cell (against the mixture over the
    data draws); with several draws, rows for each draw alone follow (``draw = k``: its
    networks against its own prediction).

    Returns one dict per (cell, draw, sigma_b): ``cell`` (``{axis: value}``), ``draw``,
    ``sigma_b``,
    ``predicted`` (steps, inf = not by the budget), ``measured`` (:class:`jaxsym.analysis.stats.
    MedianTime`), ``p_predicted``, ``p_measured``, ``p_low``, ``p_high``, ``n``, ``agree``
    (within :data:`MEDIAN_TOLERANCE`, or both beyond the budget) and ``error`` (relative,
    None unless both are finite).
    """
    from jaxsym import reporting as report
    from jaxsym.engine import results

    study = report.study_of(ds)
    predictions = predict_pooled(study) if predictions is None else predictions
    extra = [d for d in ds.dims if d not in ("sigma_b", "seed", "step", "layer", "grad_step",
                                              "weight_layer")]
    draws = np.asarray(ds.draw.values) if "draw" in ds.coords else np.zeros(ds.sizes["seed"],
                                                                            int)
    rows = []
    for (categorical, _), prediction in predictions.items():
        cell = dict(categorical)
        if set(extra) - {results.grid_dim(k) for k in cell}:
            raise ValueError(f"compare needs grid axes that are categorical or sigma_b, got "
                             f"{extra}")
        sub = ds.sel(**{results.grid_dim(k): v for k, v in cell.items()
                  if results.grid_dim(k) in ds.dims})
        parts = [(None, prediction, np.ones(draws.size, bool))]
        if isinstance(prediction, PooledPrediction) and len(prediction.draws) > 1:
            parts += [(k, p, draws == k) for k, p in enumerate(prediction.draws)]
        for draw, pred, seeds in parts:
            for sigma in sub.sigma_b.values:
                one = sub.sel(sigma_b=sigma).isel(seed=np.flatnonzero(seeds))
                rows.append(_row(cell, draw, float(sigma), pred, one, layer))
    return rows
