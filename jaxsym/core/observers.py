"""The per-step bookkeeping of ONE network's training scan, as pure functions over a state.

Contract: :class:`State` holds every record that :func:`jaxsym.core.network.run_network`
carries through its ``lax.scan`` (the records of :data:`jaxsym.core.records.RECORDS` whose
``initial`` is set; :func:`initial_state` builds it from that table) and the last finite loss.
Each function takes a state and returns a new one; nothing here trains or batches: the engine
vmaps the whole network from outside. Params are in the TRAINING LAYOUT
(:func:`jaxsym.core.dense.pad_params`); metrics read the natural view :func:`metric_view`,
in the record dtype (:func:`jaxsym.core.records.float_dtype`).

At step t (the parameters after t updates, before update t+1), in this order:
  * :func:`check_update` — divergence: a non-finite loss or gradient sets ``diverged``, and the
    step's loss becomes the last finite one; the first ``gradient_steps`` gradients' norms per
    layer ``||dL/dW_l||_F`` (0 where not finite) go to ``grad_norm (gradient_steps, depth)``.
  * :func:`observe` — at a checkpoint, ``loss`` (the full training loss), ``spread`` and
    ``diversity`` (``(hidden,)`` each, :mod:`jaxsym.core.metrics`), the functional metric
    ``functional_diversity`` and ``effective_rank`` of the hidden activations on the first
    :data:`PROBE_INPUTS` training inputs (:func:`functional_records`) go to slot
    ``checkpoints.index(t)``; then the first step with training loss <= ``loss_threshold``
    (``time_to_converge``) and the first at which the exact s2/s1 of a hidden layer
    (``time_to_break_layer``) or of every hidden layer at once (``time_to_break``, with the
    exact s2/s1 ``diversity_at_break``) exceeds ``diversity_threshold``.
  * :func:`freeze` — a diverged network keeps its last finite parameters and optimizer state.

Break detection: two-trace lower and upper bounds of s2/s1 (:func:`metrics.diversity_bounds`,
``O(width^2 n)``) settle each layer when the threshold lies outside ``[lower, upper]`` by the
margin :data:`BOUND_MARGIN` (their rounding); otherwise the SVD decides, in :func:`once`: a real
branch that, under vmap, runs only at the steps where some network of the batch needs it (a
batched ``lax.cond`` would become a select and run it at every step; a while_loop costs ~10 ms
a step on CPU even when not entered).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym.core import dense, metrics, nn, records
from jaxsym.core.spec import NetworkSpec

__all__ = ["BOUND_MARGIN", "PROBE_INPUTS", "State", "initial_state", "metric_view",
           "check_update", "observe", "functional_records", "functionally_broken", "freeze",
           "once", "scaled_norm"]

#: relative margin around the diversity threshold inside which the exact SVD decides (the
#: two-trace bounds carry rounding of ~1e-3 relative in float32 near s2/s1 = 1e-2)
BOUND_MARGIN = 1e-2


class State(NamedTuple):
    """The scan's bookkeeping of one network.

    Attributes:
      records: name -> array of every carried record (shapes of
        :func:`jaxsym.core.records.record_shapes`), e.g. ``loss (n_checkpoints,)``,
        ``diversity (n_checkpoints, hidden)``, ``time_to_break ()`` int32, ``broken ()`` bool.
      last_loss: ``()`` in the run dtype: the last finite step loss (the frozen network's).
    """

    records: dict[str, jax.Array]
    last_loss: jax.Array


def initial_state(spec: NetworkSpec) -> State:
    """Records at their initial values (:func:`jaxsym.core.records.initial_values`: zeros,
    ``steps`` for the right-censored times, NaN for ``diversity_at_break``), last loss 0."""
    values = records.initial_values(spec)
    return State({name: jnp.asarray(value) for name, value in values.items()},
                 jnp.zeros((), jnp.dtype(spec.dtype)))


def metric_view(params, spec: NetworkSpec):
    """The natural layout of training-layout ``params`` (:func:`dense.unpad_params`), in the
    record dtype."""
    rdtype = jnp.dtype(records.float_dtype(spec))
    return jax.tree.map(lambda a: a.astype(rdtype), dense.unpad_params(params, spec.layer_sizes))


def scaled_norm(x):
    """Frobenius norm computed as max|x| * ||x / max|x|||: no underflow of x^2 for tiny x (the
    staircase's lower-layer gradients reach 1e-200 in float64)."""
    scale = jnp.max(jnp.abs(x))
    safe = jnp.where(scale > 0, scale, jnp.ones_like(scale))
    return scale * jnp.sqrt(jnp.sum((x / safe) ** 2))


def check_update(state: State, t, loss_value, grads, spec: NetworkSpec):
    """Divergence and gradient norms of update ``t`` (module doc): returns ``(state,
    loss_value)``, the loss replaced by the last finite one once diverged."""
    finite = jnp.isfinite(loss_value) & jnp.all(jnp.stack(
        [jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
    rec = dict(state.records)
    rec["diverged"] = rec["diverged"] | ~finite
    loss_value = jnp.where(rec["diverged"], state.last_loss, loss_value)
    if spec.gradient_steps:
        rdtype = jnp.dtype(records.float_dtype(spec))

        def store_norms(record):
            norms = jnp.stack([scaled_norm(g["W"].astype(rdtype)) for g in grads])
            return record.at[t].set(jnp.where(finite, norms, jnp.zeros_like(norms)))

        rec["grad_norm"] = jax.lax.cond(t < spec.gradient_steps, store_norms,
                                        lambda record: record, rec["grad_norm"])
    return State(rec, loss_value), loss_value


def _checkpoint(state: State, t, params, loss_value, spec: NetworkSpec, evaluate):
    """Store the checkpoint records of ``params`` in slot ``checkpoints.index(t)`` if t is a
    checkpoint: ``spread`` and ``diversity`` from the parameters, and whatever
    ``evaluate(params, loss_value) -> {name: value}`` returns for the data-dependent ones
    (``loss``, ``functional_diversity``, ``effective_rank``: :func:`data_records`), evaluated
    inside the checkpoint branch only."""
    slot = np.full(spec.steps + 1, -1, np.int32)
    slot[list(spec.checkpoints)] = np.arange(len(spec.checkpoints))
    slot = jnp.asarray(slot)
    names = [r.name for r in records.records_of(spec) if r.dims[:1] == ("step",)]

    def store(rec):
        if spec.depth < 2:
            rdtype = jnp.dtype(records.float_dtype(spec))
            spread, diversity = jnp.zeros((0,), rdtype), jnp.zeros((0,), rdtype)
        else:
            natural = metric_view(params, spec)
            spread, diversity = metrics.layer_spreads(natural), metrics.layer_diversities(natural)
        new = {"spread": spread, "diversity": diversity, **evaluate(params, loss_value)}
        i = slot[t]
        return {name: rec[name].at[i].set(new[name].astype(rec[name].dtype)) for name in names}

    stored = jax.lax.cond(slot[t] >= 0, store, lambda r: r,
                          {name: state.records[name] for name in names})
    return state._replace(records={**state.records, **stored})


#: the functional metric reads the hidden activations of the first PROBE_INPUTS training inputs
PROBE_INPUTS = 512


def functional_records(params, x, spec: NetworkSpec) -> dict:
    """``functional_diversity`` and ``effective_rank`` ``(hidden,)`` of training-layout
    ``params`` on the probe inputs ``x[:PROBE_INPUTS]`` (:func:`metrics.functional_scores`),
    from the activations of the training layout (the exact forward pass) in the record dtype,
    padding units dropped."""
    rdtype = jnp.dtype(records.float_dtype(spec))
    probe = x[:PROBE_INPUTS].astype(rdtype)
    view = jax.tree.map(lambda a: a.astype(rdtype), params)
    widths = spec.layer_sizes[1:-1]
    hidden = nn.hidden_activations(view, probe, spec.activation, widths)
    scores = [metrics.functional_scores(h[:, :w]) for h, w in zip(hidden, widths)]
    if not scores:
        empty = jnp.zeros((0,), rdtype)
        return {"functional_diversity": empty, "effective_rank": empty}
    return {"functional_diversity": jnp.stack([d for d, _ in scores]),
            "effective_rank": jnp.stack([r for _, r in scores])}


def _exact_scores(natural):
    """Exact s2/s1 (SVD) of every hidden layer's W, ``(hidden,)``."""
    return jnp.stack([metrics.direction_diversity(layer["W"]) for layer in natural[:-1]])


@jax.custom_batching.custom_vmap
def once(natural, needed):
    """:func:`_exact_scores` of ``natural`` where any of ``needed: (hidden,)`` (else zeros), as a
    real branch: under vmap the SVDs run (for the whole batch) only at steps where some network
    needs them, where a batched ``lax.cond`` would become a select and run them at every step."""
    return jax.lax.cond(jnp.any(needed), _exact_scores, _zero_scores(needed.shape), natural)


def _zero_scores(shape):
    """The skipped branch of :func:`once`: zeros of ``shape`` in the params' dtype."""
    def zeros(natural):
        return jnp.zeros(shape, natural[0]["W"].dtype)

    return zeros


@once.def_vmap
def _once_batched(axis_size, in_batched, natural, needed):
    natural_batched, needed_batched = in_batched
    natural = jax.tree.map(lambda x, b: x if b else jnp.broadcast_to(x, (axis_size,) + x.shape),
                           natural, natural_batched)
    if not needed_batched:
        needed = jnp.broadcast_to(needed, (axis_size,) + needed.shape)
    return jax.lax.cond(jnp.any(needed), jax.vmap(_exact_scores), _zero_scores(needed.shape),
                        natural), True


def _detect(state: State, t, params, loss_value, spec: NetworkSpec) -> State:
    """First-hit convergence and break detection at step t (module doc).

    Each hidden layer's exact s2/s1 exceeds the threshold where the two-trace screen is sure
    of it, or where it is unsure and the SVD says so. One :func:`once` computes the SVDs, at
    steps where a layer is unsure or where every layer may be above the threshold (a break
    is possible: ``diversity_at_break`` records the exact s2/s1 of every layer then); a
    network that has broken needs neither.
    """
    rec = dict(state.records)
    hidden = max(spec.depth - 1, 0)
    hit_converge = (loss_value <= spec.loss_threshold) & ~rec["converged"]
    natural = metric_view(params, spec)
    bounds = [metrics.diversity_bounds(layer["W"]) for layer in natural[:-1]]
    lower = jnp.stack([b[0] for b in bounds]).reshape((hidden,))
    upper = jnp.stack([b[1] for b in bounds]).reshape((hidden,))
    threshold = spec.diversity_threshold
    sure = lower > threshold * (1 + BOUND_MARGIN)
    unsure = ~sure & (upper >= threshold * (1 - BOUND_MARGIN))
    open_ = ~rec["broken"]
    may_break = open_ & jnp.all(sure | unsure)
    exact = once(natural, open_ & (unsure | may_break))
    hit_layers = open_ & (sure | (unsure & (exact > threshold)))
    hit_break = open_ & jnp.all(hit_layers)
    new_layers = hit_layers & ~rec["broken_layer"]
    rec["time_to_break_layer"] = jnp.where(new_layers, t, rec["time_to_break_layer"])
    rec["broken_layer"] = rec["broken_layer"] | new_layers
    rec["time_to_converge"] = jnp.where(hit_converge, t, rec["time_to_converge"])
    rec["time_to_break"] = jnp.where(hit_break, t, rec["time_to_break"])
    rec["diversity_at_break"] = jnp.where(hit_break, exact, rec["diversity_at_break"])
    rec["converged"] = rec["converged"] | hit_converge
    rec["broken"] = rec["broken"] | hit_break
    return state._replace(records=rec)


def observe(state: State, t, params, loss_value, spec: NetworkSpec, evaluate) -> State:
    """Checkpoint records, then convergence and break detection, of ``params`` after t updates
    with training loss ``loss_value`` (the step's loss); ``evaluate(params, loss_value)`` gives
    the data-dependent checkpoint records (see :func:`_checkpoint`)."""
    state = _checkpoint(state, t, params, loss_value, spec, evaluate)
    return _detect(state, t, params, loss_value, spec)


def functionally_broken(state: State, spec: NetworkSpec):
    """``()`` bool: every hidden layer's functional diversity at the last checkpoint (step
    ``spec.steps``) exceeds ``spec.diversity_threshold``."""
    last = state.records["functional_diversity"][-1]
    return jnp.all(last > spec.diversity_threshold)


def freeze(diverged, old, new):
    """``old`` where ``diverged`` (a traced bool), else ``new``, leaf by leaf."""
    return jax.tree.map(lambda o, n: jnp.where(diverged, o, n), old, new)
