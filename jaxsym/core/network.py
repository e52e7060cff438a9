"""ONE network of a study: init from its key, train in ``lax.scan``, record (unbatched, pure).

Contract: :func:`run_network` ``(key, knobs, data, spec) -> records`` trains a single network.
``spec`` (:class:`jaxsym.core.spec.NetworkSpec`) holds everything static (shapes, names, step
count, record schedule): one compile per spec. ``knobs`` holds every numeric setting as a
(traced) scalar: ``sigma_b, weight_value, W_std, learning_rate, eps`` and ``weight_mode`` (the
index of the weight init scheme in :data:`jaxsym.core.spec.WEIGHT_MODES`, chosen with
``jnp.select``: init schemes differ only at step 0, so they share one compile). The sweep
engine batches this function over networks from outside (``vmap`` / ``lax.map`` / sharding);
nothing here knows about chunks.

Randomness: ``key_init, key_batches = split(key)``; init uses
:func:`jaxsym.core.init.init_params`, and the minibatch of step t is
``randint(fold_in(key_batches, t), (batch_size,), 0, n_train)`` (with replacement); the
optional parameter noise (``spec.noisy``, size ``knobs["noise"]``) of step t draws from
``fold_in(fold_in(key, 1), t)``, the optional dropout masks (``spec.dropped``, rate
``knobs["dropout"]``) of step t from ``fold_in(fold_in(key, 2), t)``, the optional label noise
(``spec.label_noisy``, size ``knobs["label_noise"]``) of step t from
``fold_in(fold_in(key, 3), t)``. A network's result
depends only on its key. With
``spec.decayed`` the optimizer follows ``L + (weight_decay / 2) ||theta||^2``
(:func:`jaxsym.core.train.make_step`); without it the step is the plain one, bit for bit.

Step convention: "step t" means after t updates (t = 0 is the initial network). At every step
``t = 0..steps`` the scan checks, on the parameters *before* update t+1:
  * converged: training loss <= ``loss_threshold`` (the minibatch loss for minibatch training,
               the dropped-out loss with dropout: the loss the step saw);
  * broken:    every hidden layer's exact direction diversity s2/s1 (SVD) > ``diversity_threshold``
               (and per hidden layer: ``time_to_break_layer``, ``broken_layer``, the first step
               at which that layer alone exceeds it). Two-trace lower and upper bounds of
               s2/s1 (:func:`jaxsym.core.metrics.diversity_bounds`) screen each step; the SVD
               runs only where the threshold lies between them.
               ``diversity_at_break`` records the exact s2/s1 of every hidden layer at that
               step. "Broken" means the threshold was crossed at some step: a layer that heals
               afterwards (diversity back below it) stays broken, and its later checkpoints
               in ``diversity`` can all lie below the threshold;
and keeps the first such step (``time_to_converge``, ``time_to_break``). A network that never
gets there is right-censored: its time is ``steps`` and its flag False.
Divergence: a non-finite loss or gradient sets ``diverged``, and the network is frozen at its last
finite parameters; recorded losses are those of the frozen parameters, so no NaN escapes.

Records: the table :data:`jaxsym.core.records.RECORDS` (shapes, dtypes, meaning); the per-step
bookkeeping is :mod:`jaxsym.core.observers`, the init :mod:`jaxsym.core.init`, the optimizer
step :func:`jaxsym.core.train.make_step`. Shapes: ``x_train (n, d)``; float records in
:func:`jaxsym.core.records.float_dtype` (float32 for a bfloat16 run).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsym.core import dense, nn, observers, records, train
from jaxsym.core.init import init_params
from jaxsym.core.spec import KNOBS, OPTIONAL_KNOBS, NetworkSpec

__all__ = ["run_network"]


def run_network(key, knobs, data, spec: NetworkSpec):
    """Train one network and return its records (:func:`jaxsym.core.records.record_shapes`).

    Args:
      key: the network's PRNG key.
      knobs: dict of scalars for :data:`jaxsym.core.spec.KNOBS` (Python floats or traced).
      data: dict with ``x_train (n, d)``, ``y_train``, ``x_test``, ``y_test`` (targets already
        in the loss's format), ``labels_train``, ``labels_test`` (integer labels, classification
        only).
      spec: the static :class:`jaxsym.core.spec.NetworkSpec`.
    """
    dtype = jnp.dtype(spec.dtype)
    knobs = {k: jnp.asarray(knobs[k] if k in knobs else OPTIONAL_KNOBS[k], dtype) for k in KNOBS}
    key_init, key_batches = jax.random.split(key)
    # trained in the padded layout (exact symmetry, see jaxsym.core.dense); records use the
    # natural view (observers.metric_view)
    params = init_params(key_init, knobs, spec)
    if spec.kernel == "exact":  # the unsafe "plain" kernel trains the natural layout
        params = dense.pad_params(params)
    x, y = data["x_train"].astype(dtype), _in_dtype(data["y_train"], dtype)
    tx, train_step = train.make_step(x, y, layer_sizes=spec.layer_sizes,
                                     activation=spec.activation, loss=spec.loss,
                                     optimizer=spec.optimizer,
                                     learning_rate=knobs["learning_rate"],
                                     batch_size=spec.batch_size, key=key_batches,
                                     noise=knobs["noise"] if spec.noisy else None,
                                     noise_key=jax.random.fold_in(key, 1),
                                     weight_decay=knobs["weight_decay"] if spec.decayed else None,
                                     dropout=knobs["dropout"] if spec.dropped else None,
                                     dropout_key=jax.random.fold_in(key, 2),
                                     label_noise=(knobs["label_noise"] if spec.label_noisy
                                                  else None),
                                     label_key=jax.random.fold_in(key, 3),
                                     kernel=spec.kernel)

    def full_loss(p):
        return train.loss_of_params(p, x, y, spec.activation, spec.loss, spec.layer_sizes[1:-1])

    # the checkpoint loss: the step's own loss for full batch, else (minibatches, or dropout,
    # whose step loss is that of a thinned network) the full training loss without dropout
    full_batch = (spec.batch_size in (0, x.shape[0]) and not spec.dropped
                  and not spec.label_noisy)

    def evaluate(p, loss_value):
        value = loss_value if full_batch else full_loss(p)
        return {"loss": value, **observers.functional_records(p, x, spec),
                **_held_out_records(p, data, spec)}

    def step(carry, t):
        p, opt_state, state = carry
        loss_value, grads, new_p, new_opt_state = train_step(p, opt_state, t)
        state, loss_value = observers.check_update(state, t, loss_value, grads, spec)
        state = observers.observe(state, t, p, loss_value, spec, evaluate)
        p, opt_state = observers.freeze(state.records["diverged"], (p, opt_state),
                                        (new_p, new_opt_state))
        return (p, opt_state, state), None

    carry = _like_network((params, tx.init(params), observers.initial_state(spec)),
                          knobs["learning_rate"])
    (params, _, state), _ = jax.lax.scan(step, carry, jnp.arange(spec.steps, dtype=jnp.int32))
    final_loss = full_loss(params)
    final_loss = jnp.where(jnp.isfinite(final_loss) & ~state.records["diverged"], final_loss,
                           state.last_loss)
    state = observers.observe(state, jnp.asarray(spec.steps, jnp.int32), params, final_loss,
                              spec, evaluate)
    return _final_records(state, params, final_loss, x, data, spec)


def _like_network(tree, anchor):
    """``tree`` unchanged, each leaf tied to the network's traced ``anchor`` (a knob) by a
    ``where`` whose branches are equal (XLA folds it). Under ``vmap`` every leaf then carries
    the network axis from the start, so ``lax.scan`` batches its body once: carries that start
    unbatched (constant records, zero optimizer state) make its batching rule trace the body
    again for every promotion (a fixpoint)."""
    same = anchor == anchor
    return jax.tree.map(lambda leaf: jnp.where(same, leaf, leaf), tree)


def _in_dtype(targets, dtype):
    """Float targets in the run dtype; integer labels as they are."""
    return targets.astype(dtype) if jnp.issubdtype(targets.dtype, jnp.floating) else targets


def _held_out_records(params, data, spec: NetworkSpec) -> dict:
    """The checkpoint records on the held-out sets: ``test_loss_curve`` (+
    ``test_accuracy_curve`` for classification) and, with a validation split, ``val_loss`` (+
    ``val_accuracy``)."""
    dtype = jnp.dtype(spec.dtype)
    widths = spec.layer_sizes[1:-1]
    splits = [("test", "test_loss_curve", "test_accuracy_curve")]
    if spec.validation:
        splits.append(("val", "val_loss", "val_accuracy"))
    out = {}
    for split, loss_name, accuracy_name in splits:
        outputs = nn.apply(params, data[f"x_{split}"].astype(dtype), spec.activation, widths)
        out[loss_name] = nn.loss_fn(spec.loss)(outputs, _in_dtype(data[f"y_{split}"], dtype))
        if spec.classification:
            out[accuracy_name] = _accuracy(outputs, data[f"labels_{split}"])
    return out


def _accuracy(outputs, labels):
    """Fraction of rows whose prediction (``outputs > 0`` for one output, else the argmax)
    equals ``labels (batch,)``, in the outputs' dtype."""
    if outputs.shape[-1] == 1:
        predicted = (outputs[:, 0] > 0).astype(labels.dtype)
    else:
        predicted = jnp.argmax(outputs, axis=-1).astype(labels.dtype)
    return jnp.mean((predicted == labels).astype(outputs.dtype))


def _final_records(state, params, final_loss, x, data, spec: NetworkSpec) -> dict:
    """The scan's records plus ``final_loss``, ``test_loss`` (inf if not finite) and, for
    classification, the training and test accuracy; floats in the record dtype, in the order
    of :data:`jaxsym.core.records.RECORDS`."""
    dtype = jnp.dtype(spec.dtype)
    rdtype = jnp.dtype(records.float_dtype(spec))
    widths = spec.layer_sizes[1:-1]
    outputs_test = nn.apply(params, data["x_test"].astype(dtype), spec.activation, widths)
    test_loss = nn.loss_fn(spec.loss)(outputs_test, _in_dtype(data["y_test"], dtype))
    result = {**state.records, "final_loss": final_loss,
              "functionally_broken": observers.functionally_broken(state, spec),
              "test_loss": jnp.where(jnp.isfinite(test_loss), test_loss, jnp.inf)}
    if spec.classification:
        outputs_train = nn.apply(params, x, spec.activation, widths)
        result["final_accuracy"] = _accuracy(outputs_train, data["labels_train"])
        result["test_accuracy"] = _accuracy(outputs_test, data["labels_test"])
    result = {r.name: result[r.name] for r in records.records_of(spec)}
    return {k: v.astype(rdtype) if v.dtype == dtype else v for k, v in result.items()}
