"""Deep networks layer by layer: every hidden layer's time to break, predicted one layer at a
time by leaving that layer symmetric.

Setting. Constant (or zero) weights and random biases ``b_l = sigma_b N(0, I)`` in EVERY hidden
layer l = 1 .. L-1 (width ``m_l``). The first-order theory (:mod:`jaxsym.theory.escape`)
linearises every layer's deviation around ONE fully symmetric trajectory. That is exact to
first order but fails where another layer's deviation grows to O(1) before this one breaks:
the upper layer's deviation grows in its *norm mode* (rows scale apart while staying parallel),
which changes the trajectory the lower layer escapes along (the depth-3 gelu failure), and an
upper layer's directions cannot split at first order at all (``c_t x u_t = 0``).

Leave one layer symmetric. For hidden layer l of a network theta_0, let ``P_l`` average layer
l's units only: the rows of ``W_l`` and the entries of ``b_l`` are replaced by their means and
the columns of ``W_{l+1}`` by theirs (so the network computes what it would with m_l copies of
the mean unit). The layer-l-symmetric trajectory is

    theta^(l)_0 = P_l theta_0,        theta^(l)_{t+1} = P_l F(theta^(l)_t),

F the study's optax step: every OTHER layer keeps its own random biases and is followed
nonlinearly, whatever its deviation grows to. Along it the units of layer l are identical, so
the step's Jacobian commutes with permutations of them and a deviation ``d_l`` (``⊥ 1``) of
layer l's biases evolves, to first order in ``d_l`` alone, as "unit j moved by ``d_lj u_t``"
for one per-unit vector ``u_t``: layer l's weights are ``1 c_t^T + d_l u_t^T`` and the
closed form of :func:`jaxsym.theory.escape.break_amplitude` gives the smallest ``a = ||d_l||``
that breaks the layer at step t, ``a*_t``. The network's own ``a = ||b_l - mean(b_l)||`` then
gives its predicted step to break, ``T_l = min{t : a > min_{s <= t} a*_s}``.

So a layer's break is predicted from the network itself, one trajectory per layer, with no
fit: the prediction is first order in layer l's OWN deviation only. It fails where that is
not enough: an upper layer whose own norm-mode deviation reaches O(1) before its directions
split (tiny sigma_b, where the splitting waits for the layer below to break). Its cost is that
of training the network once per hidden layer, with one Jacobian-vector product per step.

Leave its directions parallel. The layer-symmetric prediction is first order in layer l's
whole deviation, and that fails where the deviation's *norm mode* (the units' scales and
biases moving apart while their rows stay parallel) grows to O(1) before the directions split:
an upper layer at tiny sigma_b, whose rows can only split once the layer below has broken (its
first-order response is ``c_t x u_t = 0``). The second prediction keeps everything but the
quantity that defines "broken" nonlinear: let ``R_l`` replace ``W_l`` by its best rank-one
approximation (top singular pair; units keep their own scales, biases and outgoing weights),
and follow

    theta^||_0 = R_l theta_0,      theta^||_{t+1} = R_l F(theta^||_t),
    delta_{t+1} = J_t delta_t + (F(theta^||_t) - R_l F(theta^||_t)),       delta_0 = 0,

where ``J_t`` is the step's Jacobian at ``theta^||_t`` and the second term is the part of one
step that leaves the rank-one set (the source: nonzero once the units below differ). So the
network's layer l is predicted as ``R_l``'s trajectory plus a direction deviation that is
LINEAR (the break happens at ``s2/s1 = theta``, where that deviation is theta of the rows);
the predicted step to break is the first t with ``s2/s1(W_l^|| + delta_{W_l}) > theta``.
It needs no amplitude: the network's own biases are in the nonlinear part.

Kinks (relu): the tangent does not see g'' = delta (:mod:`jaxsym.theory.escape`, "Kinks"), so
a break that a unit crossing the kink causes is outside the layer-symmetric prediction; in the
directions-parallel one the units' own bias differences are in the nonlinear part, so a kink
they cross differently feeds the source.
"""

from __future__ import annotations

import functools

import numpy as np

from jaxsym.core import spec as core_spec
from jaxsym.core.precision import with_float64
from jaxsym.study import plan

__all__ = ["average_layer", "rank_one_layer", "layer_amplitudes", "layer_ratios",
           "layer_break_times", "ratio_break_times", "layer_escapes"]


def average_layer(params, layer: int):
    """``P_l``: ``params`` with the units of hidden layer ``layer`` (0-based) averaged: rows of
    ``W_l`` and ``b_l`` by their means, columns of ``W_{l+1}`` by theirs (module doc)."""
    out = []
    for i, weights in enumerate(params):
        W, b = weights["W"], weights["b"]
        if i == layer:
            W = W.mean(axis=0, keepdims=True) + 0 * W
            b = b.mean() + 0 * b
        if i == layer + 1:
            W = W.mean(axis=1, keepdims=True) + 0 * W
        out.append({"W": W, "b": b})
    return out


def rank_one_layer(params, layer: int):
    """``R_l``: ``params`` with hidden layer ``layer``'s (0-based) incoming ``W`` replaced by
    its best rank-one approximation ``s1 u1 v1^T`` (every row parallel to ``v1``; module doc)."""
    import jax.numpy as jnp

    u, s, vt = jnp.linalg.svd(params[layer]["W"], full_matrices=False)
    out = [dict(weights) for weights in params]
    out[layer]["W"] = s[0] * jnp.outer(u[:, 0], vt[0])
    return out


def _ratio(W):
    """``s2/s1`` of a matrix (0 for a zero matrix)."""
    import jax.numpy as jnp

    s = jnp.linalg.svd(W, compute_uv=False)
    return jnp.where(s[0] > 0, s[1] / jnp.where(s[0] > 0, s[0], 1.0), 0.0)


#: a direction deviation this large (squared norm) is long past any break: it stops growing
_FROZEN = 1e6


@functools.lru_cache(maxsize=32)
def _parallel_program(n_hidden, activation, loss, optimizer, steps, decayed):
    """The jitted ``(params batch, x, y, learning_rate, weight_decay) -> (batch, n_hidden,
    steps + 1)`` predicted ``s2/s1`` of every hidden layer (leave its directions parallel,
    module doc), vmapped over networks."""
    import jax
    import jax.numpy as jnp

    from jaxsym.core import train
    from jaxsym.theory.saddle import _zero_tangent

    def one_layer(p, x, y, learning_rate, weight_decay, layer):
        tx = train.make_optimizer(optimizer, learning_rate, weight_decay if decayed else None)
        step = train.update(tx, lambda q: train.loss_of_params(q, x, y, activation, loss,
                                                               kernel="plain"))
        q0 = rank_one_layer(p, layer)
        state = (q0, tx.init(q0))
        tangent = (jax.tree.map(jnp.zeros_like, q0), jax.tree.map(_zero_tangent, state[1]))

        def body(carry, _):
            state, tangent = carry
            (new, _), (moved, _) = jax.jvp(step, (state,), (tangent,))
            q, opt_state = new
            parallel = rank_one_layer(q, layer)
            delta = [dict(weights) for weights in moved[0]]
            delta[layer]["W"] = delta[layer]["W"] + q[layer]["W"] - parallel[layer]["W"]
            # past the break the deviation only matters for s2/s1 > theta: keep it finite
            big = sum(jnp.sum(leaf * leaf) for leaf in jax.tree.leaves(delta)) > _FROZEN
            delta = jax.tree.map(lambda new, old: jnp.where(big, old, new), delta, tangent[0])
            tangent = (delta, moved[1])
            ratio = _ratio(parallel[layer]["W"] + delta[layer]["W"])
            return ((parallel, opt_state), tangent), ratio

        _, ratios = jax.lax.scan(body, (state, tangent), None, length=steps)
        return jnp.concatenate([_ratio(q0[layer]["W"])[None], ratios])

    def run(p, x, y, learning_rate, weight_decay):
        return jnp.stack([one_layer(p, x, y, learning_rate, weight_decay, layer)
                          for layer in range(n_hidden)])

    return jax.jit(jax.vmap(run, in_axes=(0, None, None, None, None)))


@functools.lru_cache(maxsize=32)
def _program(widths, activation, loss, optimizer, steps, threshold, decayed):
    """The jitted ``(params batch, x, y, learning_rate, weight_decay) -> (batch, n_hidden,
    steps + 1)`` log a*_t of every hidden layer along its layer-symmetric trajectory, vmapped
    over networks (one compile per static configuration)."""
    import jax
    import jax.numpy as jnp

    from jaxsym.core import train
    from jaxsym.theory.escape import _propagate, _unit_deviation, break_amplitude
    from jaxsym.theory.saddle import _zero_tangent

    def one_layer(p, x, y, learning_rate, weight_decay, layer):
        tx = train.make_optimizer(optimizer, learning_rate, weight_decay if decayed else None)
        # the textbook products (4x faster here than the exact padded ones): the projection
        # averages layer l's units after every step, so no kernel asymmetry survives in it
        step = train.update(tx, lambda q: train.loss_of_params(q, x, y, activation, loss,
                                                               kernel="plain"))
        m = widths[layer]
        d = _unit_deviation(m, p[0]["W"].dtype)
        q0 = average_layer(p, layer)
        state = (q0, tx.init(q0))
        t_params = jax.tree.map(jnp.zeros_like, q0)
        t_params[layer]["b"] = d
        tangent = (t_params, jax.tree.map(_zero_tangent, state[1]))

        def amplitude(q, tangent, log_scale):
            u = d @ tangent[0][layer]["W"]
            return jnp.log(break_amplitude(q[layer]["W"][0], u, m, threshold)) - log_scale

        def body(carry, _):
            state, tangent, log_scale = carry
            (q, opt_state), _, (tangent,), log_norm = _propagate(step, state, [tangent])
            q = average_layer(q, layer)
            log_scale = log_scale + log_norm[0]
            return ((q, opt_state), tangent, log_scale), amplitude(q, tangent, log_scale)

        zero = jnp.zeros((), p[0]["W"].dtype)
        _, amps = jax.lax.scan(body, (state, tangent, zero), None, length=steps)
        return jnp.concatenate([amplitude(q0, tangent, zero)[None], amps])

    def run(p, x, y, learning_rate, weight_decay):
        return jnp.stack([one_layer(p, x, y, learning_rate, weight_decay, layer)
                          for layer in range(len(widths))])

    return jax.jit(jax.vmap(run, in_axes=(0, None, None, None, None)))


def layer_amplitudes(params, x, y, activation: str, loss: str, optimizer: str,
                     learning_rate: float, steps: int, threshold: float = 1e-2,
                     weight_decay: float = 0.0) -> np.ndarray:
    """``log a*_t`` of every hidden layer of every network along its layer-symmetric trajectory
    (module doc), ``(networks, n_hidden, steps + 1)`` float64 (``inf`` where the layer cannot
    break at step t; nan steps after a non-finite loss read as inf).

    Args:
      params: a batch of networks, ``[{"W": (networks, n_out, n_in), "b": (networks, n_out)},
        ...]``, in their dtype (use float64); any biases, constant or zero weights.
      x, y: the full training batch.
      activation, loss, optimizer, learning_rate, steps, threshold, weight_decay: the study's.
    """
    import jax.numpy as jnp

    widths = tuple(int(p["b"].shape[-1]) for p in params[:-1])
    if not widths or min(widths) < 2:
        raise ValueError(f"every hidden layer needs >= 2 units to break symmetry, got {widths}")
    program = _program(widths, activation, loss, optimizer, int(steps), float(threshold),
                       bool(weight_decay))
    dtype = params[0]["W"].dtype
    amps = np.asarray(program(params, x, y, jnp.asarray(learning_rate, dtype),
                              jnp.asarray(weight_decay, dtype)), np.float64)
    return np.where(np.isnan(amps), np.inf, amps)


def layer_ratios(params, x, y, activation: str, loss: str, optimizer: str,
                 learning_rate: float, steps: int, weight_decay: float = 0.0) -> np.ndarray:
    """Predicted ``s2/s1`` of every hidden layer of every network, leaving that layer's
    directions parallel (module doc), ``(networks, n_hidden, steps + 1)`` float64 (nan after
    a non-finite loss reads as 0: no break). Arguments as in :func:`layer_amplitudes`."""
    import jax.numpy as jnp

    n_hidden = len(params) - 1
    program = _parallel_program(n_hidden, activation, loss, optimizer, int(steps),
                                bool(weight_decay))
    dtype = params[0]["W"].dtype
    ratios = np.asarray(program(params, x, y, jnp.asarray(learning_rate, dtype),
                                jnp.asarray(weight_decay, dtype)), np.float64)
    return np.where(np.isnan(ratios), 0.0, ratios)


def ratio_break_times(ratios, threshold: float) -> np.ndarray:
    """The first step with ``s2/s1 > threshold`` per network and layer (``ratios`` ``(...,
    steps + 1)``); float, ``inf`` where none."""
    above = np.asarray(ratios) > threshold
    return np.where(above.any(axis=-1), np.argmax(above, axis=-1), np.inf).astype(np.float64)


def layer_break_times(log_amplitude, amplitude) -> np.ndarray:
    """``T_l = min{t : log a > min_{s <= t} log a*_s}`` per network and layer: ``log_amplitude``
    ``(..., n_hidden, steps + 1)`` from :func:`layer_amplitudes`, ``amplitude`` ``(...,
    n_hidden)`` the networks' own ``||b_l - mean(b_l)||``; float, ``inf`` where not within the
    budget."""
    running = np.minimum.accumulate(np.asarray(log_amplitude, np.float64), axis=-1)
    with np.errstate(divide="ignore"):
        below = running < np.log(np.asarray(amplitude, np.float64))[..., None]
    return np.where(below.any(axis=-1), np.argmax(below, axis=-1), np.inf).astype(np.float64)


@with_float64
def layer_escapes(study) -> dict:
    """Every network's predicted step to break per hidden layer, by both predictions of the
    module doc, from the config alone: each network is drawn exactly as the engine draws it (key
    ``fold_in(fold_in(key(root), grid index), seed index)``) and trained on its own data draw,
    in float64 whatever the study's dtype.

    Returns:
      ``{"parallel", "symmetric", "amplitude"}``, each ``(n_grid_points, n_seeds,
      n_hidden)``: the predicted step (``inf``: not within the budget) leaving the layer's
      directions parallel and leaving the layer symmetric, and ``||b_l - mean(b_l)||``; grid
      points in the flat (C) order of :func:`jaxsym.study.plan.grid_points`, seeds
      draw-major.

    Raises:
      ValueError: minibatch training, weights other than constant or zero, per-step noise,
        dropout or label noise, or fewer than two units in a hidden layer.
    """
    import jax
    import jax.numpy as jnp

    from jaxsym.core import init
    from jaxsym.theory.predict import _float64_data, _float64_knobs, _full_batch

    table = plan.knob_table(study)
    constant = {core_spec.WEIGHT_MODES.index(m) for m in ("constant", "zero")}
    column = {k: i for i, k in enumerate(core_spec.KNOBS)}
    bad = [k for k in ("noise", "dropout", "label_noise") if (table[:, column[k]] > 0).any()]
    if bad or not {int(v) for v in table[:, column["weight_mode"]]} <= constant:
        raise ValueError(f"{study.name}: the layer-by-layer escape needs constant or zero "
                         f"weights and no {', '.join(bad) or 'noise'}")
    count, draws = study.get("seeds.count"), study.get("task.draws")
    root = jax.random.key(study.get("seeds.root"))
    parallel = symmetric = amplitude = None
    for draw in range(draws):
        task = study.make_task(draw)
        if not _full_batch(study, task):
            raise ValueError(f"{study.name}: the layer-by-layer escape needs full-batch "
                             "training (train.batch_size = 0)")
        seeds = jnp.arange(draw * count, (draw + 1) * count, dtype=jnp.int32)
        for group in plan.plan_groups(study, task):
            spec = group.spec
            x, y = _float64_data(task, spec.loss)
            arch = core_spec.Architecture(spec.layer_sizes, spec.fan_in_scaled, "float64")
            hidden = len(spec.layer_sizes) - 2
            if parallel is None:
                shape = (len(table), count * draws, hidden)
                parallel, symmetric, amplitude = (np.full(shape, np.nan) for _ in range(3))

            def draw_params(g, s, knobs, arch=arch):
                key = jax.random.fold_in(jax.random.fold_in(root, g), s)
                return init.init_params(jax.random.split(key)[0], knobs, arch)

            batch = jax.jit(jax.vmap(draw_params, in_axes=(None, 0, None)))
            for g in group.grid_indices:
                knobs = _float64_knobs(table[g])
                params = batch(int(g), seeds, knobs)
                log_a = layer_amplitudes(
                    params, x, y, spec.activation, spec.loss, spec.optimizer,
                    float(table[g][column["learning_rate"]]), spec.steps,
                    spec.diversity_threshold, float(table[g][column["weight_decay"]]))
                a = np.stack([np.linalg.norm(np.asarray(p["b"]) - np.asarray(p["b"]).mean(
                    axis=-1, keepdims=True), axis=-1) for p in params[:-1]], axis=-1)
                ratios = layer_ratios(
                    params, x, y, spec.activation, spec.loss, spec.optimizer,
                    float(table[g][column["learning_rate"]]), spec.steps,
                    float(table[g][column["weight_decay"]]))
                rows = slice(draw * count, (draw + 1) * count)
                symmetric[g, rows] = layer_break_times(log_a, a)
                parallel[g, rows] = ratio_break_times(ratios, spec.diversity_threshold)
                amplitude[g, rows] = a
    return {"parallel": parallel, "symmetric": symmetric, "amplitude": amplitude}
