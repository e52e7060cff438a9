"""ONE network of a study: init from its key, train in ``lax.scan``, record (unbatched, pure).

Contract: :func:`run_network` ``(key, knobs, data, spec) -> records`` trains a single network.
``spec`` (:class:`NetworkSpec`) holds everything static (shapes, names, step count, record
schedule): one compile per spec. ``knobs`` holds every numeric setting as a (traced) scalar:
``sigma_b, weight_value, W_std, learning_rate, eps`` and ``weight_mode`` (the index of the
weight init scheme in :data:`WEIGHT_MODES`, chosen with ``jnp.select``: init schemes differ only
at step 0, so they share one compile). The sweep engine batches this function
over networks from outside (``vmap`` / ``lax.map`` / sharding); nothing here knows about chunks.

Randomness: ``key_init, key_batches = split(key)``; init uses :func:`init_params`, and
the minibatch of step t is ``randint(fold_in(key_batches, t), (batch_size,), 0, n_train)``
(with replacement); the optional parameter noise (``spec.noisy``, size ``knobs["noise"]``) of
step t draws from ``fold_in(fold_in(key, 1), t)``. A network's result depends only on its key.

Step convention: "step t" means after t updates (t = 0 is the initial network). At every step
``t = 0..steps`` the scan checks, on the parameters *before* update t+1:
  * converged: training loss <= ``loss_threshold`` (the minibatch loss for minibatch training);
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
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym.core import dense, metrics, nn, train

__all__ = ["NetworkSpec", "Architecture", "KNOBS", "WEIGHT_MODES", "weights_from_draws",
           "init_params", "init_mlp", "checkpoint_steps", "run_network", "record_shapes"]

#: The numeric, traced settings of one network (weight_mode as an index into WEIGHT_MODES).
KNOBS = ("sigma_b", "weight_value", "W_std", "learning_rate", "eps", "noise", "weight_mode")
#: Weight init schemes (hidden and output layers); biases are always N(0, sigma_b^2).
WEIGHT_MODES = ("constant", "zero", "glorot", "normal", "tied")


@dataclass(frozen=True)
class NetworkSpec:
    """Static description of one network's training (hashable: one compile per spec)."""

    layer_sizes: tuple[int, ...]
    activation: str
    loss: str
    optimizer: str
    fan_in_scaled: bool
    steps: int
    batch_size: int  # 0 = full batch
    dtype: str
    checkpoints: tuple[int, ...]
    gradient_steps: int
    diversity_threshold: float
    loss_threshold: float
    classification: bool
    noisy: bool = False  # the per-step parameter noise is compiled in (its size is the knob)

    @property
    def depth(self) -> int:
        return len(self.layer_sizes) - 1


@dataclass(frozen=True)
class Architecture:
    """What :func:`init_params` needs of a spec (a :class:`NetworkSpec` also has these)."""

    layer_sizes: tuple[int, ...]
    fan_in_scaled: bool
    dtype: str


def checkpoint_steps(steps: int, count: int) -> tuple[int, ...]:
    """About ``count`` log-spaced record steps in ``[0, steps]``, always including 0 and steps."""
    if steps < 1 or count < 1:
        raise ValueError("steps and count must be >= 1")
    grid = np.unique(np.round(np.logspace(0.0, np.log10(steps), max(count - 1, 1))).astype(int))
    return tuple(int(s) for s in np.unique(np.concatenate([[0], grid, [steps]])))


def weights_from_draws(spec: NetworkSpec, knobs, z: jax.Array, noise: jax.Array) -> jax.Array:
    """One layer's weights ``(n_out, n_in)`` in the scheme selected by the traced
    ``knobs["weight_mode"]`` index, from two standard normal draws ``z, noise: (n_out, n_in)``:

    constant: ``weight_value`` (``/ sqrt(n_in)`` if ``fan_in_scaled``); zero;
    glorot: ``sqrt(2 / (n_in + n_out)) Z`` (Glorot & Bengio's normal, untruncated);
    normal: ``(W_std / sqrt(n_in)) Z``; tied: every unit the row ``(W_std / sqrt(n_in)) Z[0]``,
    plus ``eps E``. The schemes share the two draws and are chosen by ``jnp.select``, so they
    share one compiled program.
    """
    n_out, n_in = z.shape
    dtype = z.dtype
    index = knobs["weight_mode"].astype(jnp.int32)
    value = knobs["weight_value"].astype(dtype)
    if spec.fan_in_scaled:
        value = value / np.sqrt(n_in).astype(dtype)
    normal = knobs["W_std"].astype(dtype) / np.sqrt(n_in).astype(dtype) * z
    candidates = [jnp.full(z.shape, value, dtype), jnp.zeros(z.shape, dtype),
                  np.sqrt(2.0 / (n_in + n_out)).astype(dtype) * z, normal,
                  jnp.broadcast_to(normal[:1], z.shape) + knobs["eps"].astype(dtype) * noise]
    return jnp.select([index == i for i in range(len(WEIGHT_MODES))], candidates)


def init_params(key, knobs, spec: NetworkSpec | Architecture):
    """The network's initial parameters (see :mod:`jaxsym.core.nn` for the layout). The ONE init
    path: the engine calls it with traced knobs, :func:`init_mlp` with Python numbers.

    ALL of the network's initial randomness is ONE standard normal draw
    ``normal(key, (sum_l 2 n_l n_{l-1} + n_l,))``, cut in order into, for each layer l
    (first layer first): ``Z_l`` and ``E_l`` (``(n_l, n_{l-1})``, row-major) and ``B_l``
    (``(n_l,)``). Then ``W_l = weights_from_draws(spec, knobs, Z_l, E_l)`` and
    ``b_l = sigma_b B_l``. One draw instead of three per layer keeps the compiled program
    small (each ``jax.random`` call is its own loop on CPU).
    """
    dtype = jnp.dtype(spec.dtype)
    shapes = list(zip(spec.layer_sizes[1:], spec.layer_sizes[:-1]))
    total = sum(2 * n_out * n_in + n_out for n_out, n_in in shapes)
    flat = jax.random.normal(key, (total,), dtype)
    sigma_b = knobs["sigma_b"].astype(dtype)
    params, start = [], 0
    for n_out, n_in in shapes:
        size = n_out * n_in
        z = flat[start:start + size].reshape(n_out, n_in)
        noise = flat[start + size:start + 2 * size].reshape(n_out, n_in)
        bias = flat[start + 2 * size:start + 2 * size + n_out]
        start += 2 * size + n_out
        params.append({"W": weights_from_draws(spec, knobs, z, noise), "b": sigma_b * bias})
    return params


def init_mlp(key, layer_sizes, weight_mode: str = "constant", *, weight_value=0.0, sigma_b=0.0,
             W_std=1.0, eps=0.0, fan_in_scaled: bool = False, dtype="float64"):
    """Initial parameters of one MLP ``layer_sizes = (n_in, n_1, ..., n_out)``, exactly as the
    study's engine draws them (:func:`init_params`) for the given knobs.

    Every layer's weights follow ``weight_mode`` (one of :data:`WEIGHT_MODES`, see
    :func:`weights_from_draws`); every bias is ``sigma_b * N(0, 1)``. The numeric knobs may be
    traced scalars (e.g. under ``vmap`` over a grid of ``sigma_b``).

    Raises:
      ValueError: unknown ``weight_mode`` (listing the allowed ones) or a layer size < 1.
    """
    if weight_mode not in WEIGHT_MODES:
        raise ValueError(f"unknown weight_mode {weight_mode!r}; allowed: {', '.join(WEIGHT_MODES)}")
    sizes = tuple(int(n) for n in layer_sizes)
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"layer_sizes must be >= 2 sizes, each >= 1; got {tuple(layer_sizes)}")
    dtype = jnp.dtype(dtype)
    knobs = {"sigma_b": sigma_b, "weight_value": weight_value, "W_std": W_std, "eps": eps,
             "learning_rate": 0.0, "weight_mode": WEIGHT_MODES.index(weight_mode)}
    knobs = {k: jnp.asarray(v, dtype) for k, v in knobs.items()}
    return init_params(key, knobs, Architecture(sizes, bool(fan_in_scaled), dtype.name))


def _accuracy(outputs, labels):
    if outputs.shape[-1] == 1:
        predicted = (outputs[:, 0] > 0).astype(labels.dtype)
    else:
        predicted = jnp.argmax(outputs, axis=-1).astype(labels.dtype)
    return jnp.mean((predicted == labels).astype(outputs.dtype))


def _scaled_norm(x):
    """Frobenius norm computed as max|x| * ||x / max|x|||: no underflow of x^2 for tiny x (the
    staircase's lower-layer gradients reach 1e-200 in float64)."""
    scale = jnp.max(jnp.abs(x))
    safe = jnp.where(scale > 0, scale, jnp.ones_like(scale))
    return scale * jnp.sqrt(jnp.sum((x / safe) ** 2))


#: relative margin around the diversity threshold inside which the exact SVD decides (the
#: two-trace bounds carry rounding of ~1e-3 relative in float32 near s2/s1 = 1e-2)
BOUND_MARGIN = 1e-2


def record_shapes(spec: NetworkSpec) -> dict[str, tuple[int, ...]]:
    """Shape of every record of one network (the sweep adds grid and seed axes in front)."""
    n_ckpt, hidden = len(spec.checkpoints), max(spec.depth - 1, 0)
    shapes = {"loss": (n_ckpt,), "spread": (n_ckpt, hidden), "diversity": (n_ckpt, hidden),
              "grad_norm": (spec.gradient_steps, spec.depth), "time_to_break": (),
              "time_to_break_layer": (hidden,), "broken_layer": (hidden,),
              "diversity_at_break": (hidden,), "broken": (), "time_to_converge": (),
              "converged": (), "diverged": (),
              "final_loss": (), "test_loss": ()}
    if spec.classification:
        shapes["final_accuracy"] = ()
        shapes["test_accuracy"] = ()
    return shapes


def run_network(key, knobs, data, spec: NetworkSpec):
    """Train one network and return its records (see :func:`record_shapes`).

    Args:
      key: the network's PRNG key.
      knobs: dict of scalars for :data:`KNOBS` (Python floats or traced).
      data: dict with ``x_train (n, d)``, ``y_train``, ``x_test``, ``y_test`` (targets already
        in the loss's format), ``labels_train``, ``labels_test`` (integer labels, classification
        only).
      spec: the static :class:`NetworkSpec`.
    """
    dtype = jnp.dtype(spec.dtype)
    # records (and the metrics behind them) in float32 when training in bfloat16: LAPACK has
    # no bfloat16 SVD, and netCDF no bfloat16 type
    rdtype = jnp.dtype(jnp.float32) if dtype == jnp.bfloat16 else dtype
    knobs = {k: jnp.asarray(knobs[k], dtype) for k in KNOBS}
    key_init, key_batches = jax.random.split(key)
    sizes, widths = spec.layer_sizes, spec.layer_sizes[1:-1]
    # trained in the padded layout (exact symmetry, see jaxsym.core.dense); records use the natural
    # view dense.unpad_params(p, sizes)
    params = dense.pad_params(init_params(key_init, knobs, spec))
    x, y = data["x_train"].astype(dtype), data["y_train"]
    if jnp.issubdtype(y.dtype, jnp.floating):
        y = y.astype(dtype)
    tx, train_step = train.make_step(x, y, layer_sizes=sizes, activation=spec.activation,
                                     loss=spec.loss,
                                     optimizer=spec.optimizer,
                                     learning_rate=knobs["learning_rate"],
                                     batch_size=spec.batch_size, key=key_batches,
                                     noise=knobs["noise"] if spec.noisy else None,
                                     noise_key=jax.random.fold_in(key, 1))
    def full_loss(p):
        return train.loss_of_params(p, x, y, spec.activation, spec.loss, widths)

    n_ckpt, hidden = len(spec.checkpoints), max(spec.depth - 1, 0)
    slot = np.full(spec.steps + 1, -1, np.int32)
    slot[list(spec.checkpoints)] = np.arange(n_ckpt)
    slot = jnp.asarray(slot)

    def metric_view(p):
        return jax.tree.map(lambda a: a.astype(rdtype), dense.unpad_params(p, sizes))

    def snapshot(p):
        if hidden == 0:
            return jnp.zeros((0,), rdtype), jnp.zeros((0,), rdtype)
        natural = metric_view(p)
        return metrics.layer_spreads(natural), metrics.layer_diversities(natural)

    full_batch = spec.batch_size in (0, x.shape[0])

    def record(state, t, p, loss_value):
        """Store checkpoint metrics of params ``p`` (after t updates) if t is a checkpoint.

        ``loss_value`` is the step's loss; with minibatches the full training loss is computed
        instead, inside the checkpoint branch only."""
        def store(records):
            spread, diversity = snapshot(p)
            i = slot[t]
            value = loss_value if full_batch else full_loss(p)
            return {"loss": records["loss"].at[i].set(value.astype(rdtype)),
                    "spread": records["spread"].at[i].set(spread),
                    "diversity": records["diversity"].at[i].set(diversity)}
        state["records"] = jax.lax.cond(slot[t] >= 0, store, lambda r: r, state["records"])
        return state

    def exact_scores(natural):
        """Exact s2/s1 (SVD) of every hidden layer's W, ``(hidden,)``."""
        return jnp.stack([metrics.direction_diversity(layer["W"]) for layer in natural[:-1]])

    def zeros_like_scores(natural):
        return jnp.zeros((hidden,), rdtype)

    @jax.custom_batching.custom_vmap
    def once(natural, needed):
        """:func:`exact_scores` where any of ``needed`` (else zeros), as a real branch: under
        vmap the SVDs run (for the whole batch) only at steps where some network needs them,
        where a batched ``lax.cond`` would become a select and run them at every step."""
        return jax.lax.cond(jnp.any(needed), exact_scores, zeros_like_scores, natural)

    @once.def_vmap
    def _once_batched(axis_size, in_batched, natural, needed):
        natural_batched, needed_batched = in_batched
        natural = jax.tree.map(lambda x, b: x if b else jnp.broadcast_to(x, (axis_size,) + x.shape),
                               natural, natural_batched)
        if not needed_batched:
            needed = jnp.broadcast_to(needed, (axis_size,) + needed.shape)
        batched = jax.lax.cond(jnp.any(needed), jax.vmap(exact_scores),
                               lambda n: jnp.zeros((axis_size, hidden), rdtype), natural)
        return batched, True

    def detect(state, t, p, loss_value):
        hit_converge = (loss_value <= spec.loss_threshold) & ~state["converged"]
        # per hidden layer (the network is broken when every layer is at once), decided as the
        # exact s2/s1 (SVD) would: two-trace bounds (metrics.diversity_bounds, O(width^2 n))
        # settle it when the threshold lies outside [lower, upper] with a margin that covers
        # their rounding (BOUND_MARGIN); otherwise the SVD decides, in ``once``: a real branch
        # that, under vmap, runs only at the steps where some network of the batch needs it (a
        # batched cond would run it at every step; a while_loop costs ~10 ms a step on CPU
        # even when not entered)
        def screen(q):
            natural = metric_view(q)
            bounds = [metrics.diversity_bounds(layer["W"]) for layer in natural[:-1]]
            lower = jnp.stack([b[0] for b in bounds])
            upper = jnp.stack([b[1] for b in bounds])
            threshold = spec.diversity_threshold
            sure = lower > threshold * (1 + BOUND_MARGIN)
            unsure = ~sure & (upper >= threshold * (1 - BOUND_MARGIN))
            exact = once(natural, unsure)
            return sure | (unsure & (exact > threshold))

        hit_layers = jax.lax.cond(state["broken"], lambda q: jnp.zeros((hidden,), bool),
                                  screen, p)
        hit_break = ~state["broken"] & jnp.all(hit_layers)
        # the exact s2/s1 at the break, once per network
        exact = once(metric_view(p), jnp.broadcast_to(hit_break, (hidden,)))
        new_layers = hit_layers & ~state["broken_layer"]
        state["time_to_break_layer"] = jnp.where(new_layers, t, state["time_to_break_layer"])
        state["broken_layer"] = state["broken_layer"] | new_layers
        state["time_to_converge"] = jnp.where(hit_converge, t, state["time_to_converge"])
        state["time_to_break"] = jnp.where(hit_break, t, state["time_to_break"])
        state["diversity_at_break"] = jnp.where(hit_break, exact, state["diversity_at_break"])
        state["converged"] = state["converged"] | hit_converge
        state["broken"] = state["broken"] | hit_break
        return state

    def step(carry, t):
        p, opt_state, state = carry
        loss_value, grads, new_p, new_opt_state = train_step(p, opt_state, t)
        finite = jnp.isfinite(loss_value) & jnp.all(jnp.stack(
            [jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
        state["diverged"] = state["diverged"] | ~finite
        loss_value = jnp.where(state["diverged"], state["last_loss"], loss_value)
        state["last_loss"] = loss_value
        if spec.gradient_steps:
            def store_norms(record):
                norms = jnp.stack([_scaled_norm(g["W"].astype(rdtype)) for g in grads])
                return record.at[t].set(jnp.where(finite, norms, jnp.zeros_like(norms)))

            state["grad_norm"] = jax.lax.cond(t < spec.gradient_steps, store_norms,
                                              lambda record: record, state["grad_norm"])
        state = record(state, t, p, loss_value)
        state = detect(state, t, p, loss_value)
        keep = state["diverged"]
        p = jax.tree.map(lambda old, new: jnp.where(keep, old, new), p, new_p)
        opt_state = jax.tree.map(lambda old, new: jnp.where(keep, old, new), opt_state,
                                 new_opt_state)
        return (p, opt_state, state), None

    zero = jnp.zeros((), dtype)
    state = {
        "records": {"loss": jnp.zeros((n_ckpt,), rdtype),
                    "spread": jnp.zeros((n_ckpt, hidden), rdtype),
                    "diversity": jnp.zeros((n_ckpt, hidden), rdtype)},
        "grad_norm": jnp.zeros((spec.gradient_steps, spec.depth), rdtype),
        "time_to_break": jnp.asarray(spec.steps, jnp.int32), "broken": jnp.asarray(False),
        "time_to_break_layer": jnp.full((hidden,), spec.steps, jnp.int32),
        "broken_layer": jnp.zeros((hidden,), bool),
        "diversity_at_break": jnp.full((hidden,), jnp.nan, rdtype),
        "time_to_converge": jnp.asarray(spec.steps, jnp.int32), "converged": jnp.asarray(False),
        "diverged": jnp.asarray(False), "last_loss": zero,
    }
    (params, _, state), _ = jax.lax.scan(step, (params, tx.init(params), state),
                                         jnp.arange(spec.steps, dtype=jnp.int32))
    final_loss = full_loss(params)
    final_loss = jnp.where(jnp.isfinite(final_loss) & ~state["diverged"], final_loss,
                           state["last_loss"])
    t_end = jnp.asarray(spec.steps, jnp.int32)
    state = record(state, t_end, params, final_loss)
    state = detect(state, t_end, params, final_loss)

    outputs_test = nn.apply(params, data["x_test"].astype(dtype), spec.activation, widths)
    y_test = data["y_test"]
    if jnp.issubdtype(y_test.dtype, jnp.floating):
        y_test = y_test.astype(dtype)
    test_loss = nn.loss_fn(spec.loss)(outputs_test, y_test)
    result = {**state["records"], "grad_norm": state["grad_norm"],
              "time_to_break": state["time_to_break"], "broken": state["broken"],
              "time_to_break_layer": state["time_to_break_layer"],
              "broken_layer": state["broken_layer"],
              "diversity_at_break": state["diversity_at_break"],
              "time_to_converge": state["time_to_converge"], "converged": state["converged"],
              "diverged": state["diverged"], "final_loss": final_loss,
              "test_loss": jnp.where(jnp.isfinite(test_loss), test_loss, jnp.inf)}
    if spec.classification:
        outputs_train = nn.apply(params, x, spec.activation, widths)
        result["final_accuracy"] = _accuracy(outputs_train, data["labels_train"])
        result["test_accuracy"] = _accuracy(outputs_test, data["labels_test"])
    return {k: v.astype(rdtype) if v.dtype == dtype else v for k, v in result.items()}
