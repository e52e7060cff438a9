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

__all__ = ["EscapePrediction", "PooledPrediction", "linearised_escape", "noisy_escapes",
           "break_amplitude"]


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

    def effective_sigma(self, t: float, layer: int = 0) -> float:
        """The bias spread whose predicted MEDIAN break is step ``t``: the inverse of
        :meth:`median_time`, ``A_t / sqrt(median chi^2_{m-1})``. A noise source that breaks
        identical units (sigma_b = 0) at a median step t acts like this initial spread
        (issue 22: hardware noise as a dose). ``nan`` outside ``[1, steps]`` or where no
        finite amplitude exists by step t."""
        m = self.widths[layer]
        if m < 2 or not 1 <= t <= self.steps:
            return math.nan
        log_a = self._running_min(layer)[int(t)]
        if not np.isfinite(log_a):
            return math.nan
        return float(math.exp(log_a) / math.sqrt(sps.chi2.isf(0.5, m - 1)))

    def slope(self, layer: int = 0, window: int = 200) -> float:
        """Steps per decade of smaller sigma_b at the end of the run: ``ln 10`` over the mean
        per-step fall of ``log a*`` over the last ``window`` steps (``inf`` if it does not
        fall)."""
        tail = self.log_amplitude[layer, -window - 1:]
        if not np.all(np.isfinite(tail)):
            return math.inf
        fall = (tail[0] - tail[-1]) / (len(tail) - 1)
        return math.log(10.0) / fall if fall > 0 else math.inf


@dataclass(frozen=True)
class PooledPrediction:
    """The prediction for networks spread evenly over several data draws: the mixture of the
    per-draw predictions, ``P(T <= t) = mean_k P_k(T <= t)`` (``draws``: a tuple of
    :class:`EscapePrediction` with one step count)."""

    draws: tuple

    @property
    def steps(self) -> int:
        return self.draws[0].steps

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
                      learning_rate: float, steps: int, threshold: float = 1e-2,
                      weight_decay: float = 0.0, batch_size: int = 0, batch_key=None,
                      label_noise: float = 0.0, label_key=None) -> EscapePrediction:
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
      weight_decay: the study's coupled L2 rate (0: off; the optimizer of
        :func:`jaxsym.core.train.make_optimizer` with it, so the trajectory and its tangents
        are those of the decayed step the study runs).
      batch_size, batch_key: minibatches (0: full batch): step t uses the rows of
        :func:`jaxsym.core.train.minibatch` with ``batch_key`` (the engine's ``key_batches``
        of a network: that network's own minibatch sequence), so the symmetric trajectory is
        the noisy one that network follows and ``J_t`` the Jacobian of its step t.
      label_noise, label_key: label-noise SGD (0: off), the engine's draws
        (:func:`jaxsym.core.train.noisy_labels`; ``label_key`` is the network's
        ``fold_in(key, 3)``).
    See :func:`noisy_escapes` for many networks' noise sequences at once.
    """
    import jax.numpy as jnp

    n_hidden = len(params) - 1
    if n_hidden < 1:
        raise ValueError("linearised_escape needs at least one hidden layer")
    widths = tuple(int(p["b"].shape[0]) for p in params[:-1])
    if min(widths) < 2:
        raise ValueError(f"every hidden layer needs >= 2 units to break symmetry, got {widths}")
    program = _escape_program(widths, activation, loss, optimizer, int(steps), float(threshold),
                              bool(weight_decay), *_noise_statics(x, batch_size, label_noise))
    dtype = params[0]["W"].dtype
    keys = _noise_keys(batch_key, label_key, 1)
    amps, losses, kinks = program(params, x, y, jnp.asarray(learning_rate, dtype),
                                  jnp.asarray(weight_decay, dtype),
                                  jnp.asarray(label_noise, dtype), keys[0][0], keys[1][0])
    amps = np.asarray(amps, np.float64)
    return EscapePrediction(widths, float(threshold), amps[0], np.asarray(losses, np.float64),
                            amps[1], log_kink_margin=np.asarray(kinks, np.float64))


def noisy_escapes(params, x, y, activation: str, loss: str, optimizer: str,
                  learning_rate: float, steps: int, threshold: float, batch_size: int,
                  batch_keys, label_noise: float = 0.0, label_keys=None,
                  weight_decay: float = 0.0) -> list:
    """:func:`linearised_escape` along each of ``n`` noisy symmetric trajectories at once
    (``batch_keys``, ``label_keys``: ``(n,)`` PRNG keys, the networks' own; one compile,
    vmapped over the keys): ``n`` :class:`EscapePrediction` s, one per noise sequence. With
    noise (minibatches or label noise) each one predicts ONE network's break, ``T(a)`` for its
    own deviation norm ``a`` (:meth:`EscapePrediction.break_time`), and its tangent's growth is
    the finite-time Lyapunov exponent of the random linear map ``J_t`` it follows
    (``jaxsym.theory.predict.noisy_escape_times`` reads it off the log break amplitude)."""
    import jax.numpy as jnp

    widths = tuple(int(p["b"].shape[0]) for p in params[:-1])
    if min(widths) < 2:
        raise ValueError(f"every hidden layer needs >= 2 units to break symmetry, got {widths}")
    statics = _noise_statics(x, batch_size, label_noise)
    program = _escape_program(widths, activation, loss, optimizer, int(steps), float(threshold),
                              bool(weight_decay), *statics, batched=True)
    dtype = params[0]["W"].dtype
    n = len(batch_keys) if batch_keys is not None else len(label_keys)
    bkeys, lkeys = _noise_keys(batch_keys, label_keys, n)
    amps, losses, kinks = program(params, x, y, jnp.asarray(learning_rate, dtype),
                                  jnp.asarray(weight_decay, dtype),
                                  jnp.asarray(label_noise, dtype), bkeys, lkeys)
    amps, losses, kinks = (np.asarray(a, np.float64) for a in (amps, losses, kinks))
    return [EscapePrediction(widths, float(threshold), amps[i, 0], losses[i], amps[i, 1],
                             log_kink_margin=kinks[i]) for i in range(n)]


def _noise_statics(x, batch_size: int, label_noise: float) -> tuple[int, bool]:
    """The static noise settings of :func:`_escape_program`: the batch size (0 for full batch,
    ``n`` included) and whether label noise is compiled in."""
    n = int(x.shape[0])
    if not 0 <= int(batch_size) <= n:
        raise ValueError(f"batch_size must be in [0, {n}] (0 = full batch), got {batch_size}")
    if label_noise < 0:
        raise ValueError(f"label_noise must be >= 0, got {label_noise}")
    return (0 if int(batch_size) in (0, n) else int(batch_size)), bool(label_noise > 0)


def _noise_keys(batch_keys, label_keys, n: int):
    """``(n,)`` batch and label keys (a placeholder key where a noise is off)."""
    import jax
    import jax.numpy as jnp

    def keys(given):
        if given is None:
            return jnp.stack([jax.random.key(0)] * n)
        given = jnp.asarray(given) if not isinstance(given, jax.Array) else given
        return given.reshape((n,)) if given.ndim else given[None]

    return keys(batch_keys), keys(label_keys)


def _unit_deviation(m: int, dtype):
    """The unit antisymmetric bias deviation ``(e_1 - e_2) / sqrt(2)`` of an ``m``-unit layer."""
    import jax.numpy as jnp

    return jnp.zeros(m, dtype).at[0].set(1.0).at[1].set(-1.0) / jnp.sqrt(2.0)


def _amplitudes(p, tangents, log_scale, widths, threshold):
    """``(2, n_hidden)``: per hidden layer, ``log a*_t`` and the norm-mode ``log n_t`` (first
    hidden layer only) of the current symmetric point ``p`` and normalised tangents, in units
    of the initial deviation (``log_scale``: the tangents' accumulated log growth)."""
    import jax.numpy as jnp

    out = []
    for l in range(len(widths)):
        W, T = p[l]["W"], tangents[l][0][l]["W"]
        u = _unit_deviation(widths[l], W.dtype) @ T
        a = break_amplitude(W[0], u, widths[l], threshold)
        uu = jnp.sum(u * u)
        norm = jnp.where(
            (uu > 0) & (l == 0),
            0.5 * jnp.log(threshold * widths[l] * jnp.sum(W[0] * W[0])
                          / jnp.where(uu > 0, uu, 1.0)), jnp.inf)
        out.append(jnp.stack([jnp.log(a), norm]) - log_scale[l])
    return jnp.stack(out, axis=1)


def _kink_margins(p, tangents, log_scale, x, widths):
    """log tau+ and log tau- of hidden layer 1 (module doc, "Kinks"): over the samples,
    the smallest positive and negative (in size) unit bias deviations that put a unit's
    pre-activation on the other side of 0 than the symmetric unit's, to first order."""
    import jax.numpy as jnp

    W, b = p[0]["W"][0], p[0]["b"][0]
    TW, Tb = tangents[0][0][0]["W"], tangents[0][0][0]["b"]
    d = _unit_deviation(widths[0], W.dtype)
    z = x @ W + b
    delta = (x @ (d @ TW) + d @ Tb) * jnp.exp(log_scale[0])
    safe = jnp.where(delta != 0, delta, 1.0)
    tau = jnp.where(delta != 0, -z / safe, jnp.inf)
    plus = jnp.min(jnp.where(tau > 0, tau, jnp.inf))
    minus = jnp.min(jnp.where(tau < 0, -tau, jnp.inf))
    return jnp.log(jnp.stack([plus, minus]))


def _initial_tangents(p, opt_state, widths):
    """One tangent per hidden layer: that layer's unit bias deviation, zero elsewhere (the
    optimizer state's tangent is zero)."""
    import jax
    import jax.numpy as jnp

    from jaxsym.theory.saddle import _zero_tangent

    tangents = []
    for l in range(len(widths)):
        t_params = jax.tree.map(jnp.zeros_like, p)
        d = jnp.zeros(widths[l], p[l]["b"].dtype).at[0].set(1.0).at[1].set(-1.0)
        t_params[l]["b"] = d / jnp.sqrt(2.0)
        tangents.append((t_params, jax.tree.map(_zero_tangent, opt_state)))
    return tangents


def _propagate(step_map, state, tangents):
    """One step of the symmetric state and of every layer's tangent (``jax.jvp`` of the optax
    update), the tangents renormalised: ``(new_state, loss, new tangents, log norms)``."""
    import jax
    import jax.numpy as jnp

    new_tangents, norms = [], []
    for tangent in tangents:
        (new_state, (value, _)), (tangent, _) = jax.jvp(step_map, (state,), (tangent,))
        norm = jnp.sqrt(sum(jnp.sum(leaf * leaf) for leaf in jax.tree.leaves(tangent[0])))
        new_tangents.append(jax.tree.map(
            lambda t: t / norm if t.dtype != jax.dtypes.float0 else t, tangent))
        norms.append(norm)
    return new_state, value, new_tangents, jnp.log(jnp.stack(norms))


@functools.lru_cache(maxsize=64)
def _escape_program(widths, activation, loss, optimizer, steps, threshold, decayed=False,
                    batch_size=0, label_noisy=False, batched=False):
    """The jitted ``(params, x, y, learning_rate, weight_decay, label_noise, batch_key,
    label_key) -> (log a*_t, loss_t, log tau_t)`` of :func:`linearised_escape`: one compile per
    static configuration (decay compiled in only when ``decayed``, minibatches of
    ``batch_size`` rows when it is > 0, label noise when ``label_noisy``), reused across data
    draws, learning rates and decay rates; ``batched``: vmapped over the two keys
    (:func:`noisy_escapes`). ``loss_t`` is the loss of step t's (noisy) batch, the last entry
    the full clean loss."""
    import jax
    import jax.numpy as jnp

    from jaxsym.core import train
    from jaxsym.theory.saddle import symmetric_projection

    def run(p, x, y, learning_rate, weight_decay, label_noise, batch_key, label_key):
        tx = train.make_optimizer(optimizer, learning_rate, weight_decay if decayed else None)

        def objective(q):
            return train.loss_of_params(q, x, y, activation, loss)

        def step_map_at(t):
            """(q, opt_state) -> ((q', opt_state'), (loss, grads)): the study's optax update
            on step t's (mini)batch, with its label noise."""
            xb, yb = train.minibatch(x, y, batch_size, batch_key, t)
            if label_noisy:
                yb = train.noisy_labels(yb, label_noise, label_key, t)
            return train.update(tx, lambda q: train.loss_of_params(q, xb, yb, activation,
                                                                    loss))

        def body(carry, t):
            state, tangents, log_scale = carry
            (q, opt_state), value, tangents, log_norms = _propagate(step_map_at(t), state,
                                                                    tangents)
            q = symmetric_projection(q)
            log_scale = log_scale + log_norms
            return ((q, opt_state), tangents, log_scale), (
                _amplitudes(q, tangents, log_scale, widths, threshold), value,
                _kink_margins(q, tangents, log_scale, x, widths))

        state = (p, tx.init(p))
        tangents = _initial_tangents(p, state[1], widths)
        log_scale = jnp.zeros(len(widths), p[0]["W"].dtype)
        first = _amplitudes(p, tangents, log_scale, widths, threshold)
        first_kink = _kink_margins(p, tangents, log_scale, x, widths)
        (state, _, _), (amps, values, kinks) = jax.lax.scan(
            body, (state, tangents, log_scale), jnp.arange(steps, dtype=jnp.int32))
        final = objective(state[0])
        # amps: (steps, 2, n_hidden) -> (2, n_hidden, steps + 1); kinks -> (2, steps + 1)
        return (jnp.concatenate([first[:, :, None], jnp.moveaxis(amps, 0, -1)], axis=2),
                jnp.concatenate([values, final[None]]),
                jnp.concatenate([first_kink[:, None], kinks.T], axis=1))

    if batched:
        return jax.jit(jax.vmap(run, in_axes=(None,) * 6 + (0, 0)))
    return jax.jit(run)
