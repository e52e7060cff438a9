"""Study-level predictions: the theory applied to every configuration of a study, before (and
without) any training.

Contract: each function takes a validated :class:`jaxsym.study.config.Study` and returns the
theory's objects (:class:`~jaxsym.theory.escape.EscapePrediction`,
:class:`~jaxsym.theory.escape.PooledPrediction`, :class:`~jaxsym.theory.classify.CellPrediction`,
:class:`~jaxsym.theory.saddle.SaddleAnalysis`, arrays). They read the study's plan
(:mod:`jaxsym.study.plan`: grid points, knob table, static groups), its tasks and the one init
path (:mod:`jaxsym.core.init`); nothing here reads results, so a prediction is a function of
the config alone. Comparing predictions with measured results is :mod:`jaxsym.analysis`'s job,
which also caches these predictions next to ``results.nc``.

* :func:`escape_predictions`: the linearised escape of every constant/zero-weight configuration
  of one data draw; :func:`pooled_escape`: of every draw, pooled.
* :func:`deviation_norms`: ``||b_1 - mean(b_1)||`` of every network at sigma_b = 1, drawn exactly
  as the engine draws it (for per-network predictions ``T(sigma_b ||d||)``).
* :func:`classify_study`: the mechanism and P(broken) of every (cell, draw, sigma_b).
* :func:`analyse_saddle`: the Hessian at the collapsed point and its predicted log-law slope.
* :func:`decayed_endpoints`: the antisymmetric block at the weight-decayed collapsed point of
  every cell and draw (the sign that decides whether decay lets random biases break).
* :func:`noisy_escape_times`: the per-network linearised escape along each network's own
  noisy (minibatch, label-noise) symmetric trajectory, and its Lyapunov exponent.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from jaxsym.core import spec as core_spec
from jaxsym.core.precision import with_float64
from jaxsym.study import plan, tasks

__all__ = ["escape_predictions", "pooled_escape", "deviation_norms", "classify_study",
           "analyse_saddle", "decayed_endpoints", "noisy_escape_times"]


def _full_batch(study, task) -> bool:
    """Full-batch training: every ``batch_size`` (the setting, or each value of a
    ``grid.batch_size`` axis) 0 or the task's training-set size (read from the built task, so
    a config that leaves ``task.n_train`` at its default works)."""
    sizes = dict(study.grid).get("batch_size", (study.get("train.batch_size"),))
    return all(b in (0, task.x_train.shape[0]) for b in sizes)


def _float64_data(task, loss: str):
    """``(x, y)`` of the training set as float64 arrays (integer labels stay integers), targets
    in the format ``loss`` expects."""
    import jax.numpy as jnp

    x = jnp.asarray(task.x_train).astype(jnp.float64)
    y = jnp.asarray(tasks.targets_for_loss(task, task.y_train, loss))
    return x, (y.astype(jnp.float64) if jnp.issubdtype(y.dtype, jnp.floating) else y)


def _float64_knobs(row, **fixed) -> dict:
    import jax.numpy as jnp

    values = {k: float(row[i]) for i, k in enumerate(core_spec.KNOBS)}
    values.update(fixed)
    return {k: jnp.asarray(v, jnp.float64) for k, v in values.items()}


def _symmetric_start(row, spec):
    """The float64 network of knob row ``row`` at sigma_b = 0 (identical units for constant or
    zero weights): the start of the symmetric trajectory."""
    import jax

    from jaxsym.core import init

    return init.init_params(
        jax.random.key(0), _float64_knobs(row, sigma_b=0.0),
        core_spec.Architecture(spec.layer_sizes, spec.fan_in_scaled, "float64"))


@with_float64
def escape_predictions(study, trajectory_steps: int | None = None, draw: int = 0) -> dict:
    """:func:`jaxsym.theory.escape.linearised_escape` for every configuration of a study: one
    prediction per static group and per distinct setting of the numeric knobs other than
    sigma_b (the prediction covers every sigma_b at once).

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
    from jaxsym.theory.escape import linearised_escape

    task = study.make_task(draw)
    if not _full_batch(study, task):
        raise ValueError(f"{study.name}: the linearised escape needs full-batch training "
                         "(train.batch_size = 0)")
    table = plan.knob_table(study)
    others = [i for i, k in enumerate(core_spec.KNOBS) if k != "sigma_b"]
    constant_modes = {core_spec.WEIGHT_MODES.index(m) for m in ("constant", "zero")}
    out, maths = {}, {}
    for group in plan.plan_groups(study, task):
        spec = group.spec
        x, y = _float64_data(task, spec.loss)
        for g in group.grid_indices:
            row = table[g]
            knobs = tuple((core_spec.KNOBS[i], float(row[i])) for i in others)
            values = dict(knobs)
            if ((group.categorical, knobs) in out or values["noise"] > 0
                    or int(values["weight_mode"]) not in constant_modes):
                continue
            # the kernels compute the same maths: groups that differ only there share one
            same = (replace(spec, kernel="exact"), knobs)
            if same not in maths:
                params = _symmetric_start(row, spec)
                maths[same] = linearised_escape(
                    params, x, y, spec.activation, spec.loss, spec.optimizer,
                    values["learning_rate"], trajectory_steps or spec.steps,
                    spec.diversity_threshold, weight_decay=values["weight_decay"])
            out[(group.categorical, knobs)] = maths[same]
    return out


def pooled_escape(study, trajectory_steps: int | None = None) -> dict:
    """:func:`escape_predictions` on every data draw of the study (``task.draws``), pooled:
    ``{(categorical, knobs): PooledPrediction}`` (one draw: a mixture of one)."""
    from jaxsym.theory.escape import PooledPrediction

    per_draw = [escape_predictions(study, trajectory_steps, draw)
                for draw in range(study.get("task.draws"))]
    return {key: PooledPrediction(tuple(p[key] for p in per_draw)) for key in per_draw[0]}


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

    from jaxsym.core import init

    table = plan.knob_table(study)
    seeds = np.asarray(list(seeds))
    root = jax.random.key(study.get("seeds.root"))
    norms = np.full((len(table), seeds.size), np.nan)
    for group in plan.plan_groups(study, study.make_task(0)):
        arch = core_spec.Architecture(group.spec.layer_sizes, group.spec.fan_in_scaled,
                                      "float64")

        def one(g, s, knobs, arch=arch):
            key = jax.random.fold_in(jax.random.fold_in(root, g), s)
            b = init.init_params(jax.random.split(key)[0], knobs, arch)[0]["b"]
            return jnp.linalg.norm(b - b.mean())

        batched = jax.jit(jax.vmap(one, in_axes=(None, 0, None)))
        for g in group.grid_indices:
            knobs = _float64_knobs(table[g], sigma_b=1.0)
            norms[g] = np.asarray(batched(int(g), jnp.asarray(seeds, jnp.int32), knobs))
    return norms


def classify_study(study) -> dict:
    """``{(cell, draw, sigma_b): CellPrediction}`` for every cell of a study with constant
    weights (theory only: one linearised escape per cell and data draw; the mechanisms are
    those of :func:`jaxsym.theory.classify.mechanism`). ``cell`` is the group's categorical
    ``((axis, value), ...)`` followed by the study's other numeric grid axes (sigma_b aside,
    e.g. ``("weight_decay", 0.01)``) at their values, in grid order."""
    import jax.numpy as jnp

    from jaxsym.study.config import NUMERIC_AXES
    from jaxsym.theory.classify import CellPrediction, kink_exposure, mechanism, piecewise_linear

    sigmas = [float(s) for s in dict(study.grid).get("sigma_b", (study.get("init.sigma_b"),))]
    numeric = [a for a in study.grid_axes if a in NUMERIC_AXES and a != "sigma_b"]
    out = {}
    for draw in range(study.get("task.draws")):
        task = study.make_task(draw)
        value = study.get("init.weight_value") / (math.sqrt(task.dim)
                                                  if study.get("init.fan_in_scaled") else 1.0)
        for (group_cell, knobs), pred in escape_predictions(study, draw=draw).items():
            values = dict(knobs)
            categorical = group_cell + tuple((a, values[a]) for a in numeric)
            activation = dict(categorical).get("activation", study.get("model.activation"))
            kinked = piecewise_linear(activation)
            for sigma in sigmas:
                p = float(pred.p_broken_by(sigma))
                kink = (kink_exposure(jnp.asarray(task.x_train), np.full(task.dim, value), 0.0,
                                      sigma, study.get("model.width")) if kinked else None)
                slope = pred.slope()
                first = float(pred.first_order().p_broken_by(sigma))
                out[(categorical, draw, sigma)] = CellPrediction(
                    p, mechanism(activation, p, slope, pred.diverged_at is not None, first),
                    slope, kink, pred.p_kink_by(sigma) if kinked else None)
    return out


@with_float64
def analyse_saddle(study, grad_tol: float = 1e-12, max_steps: int = 200_000,
                   trajectory_steps: int | None = None, require_reached: bool = True):
    """Saddle theory (:mod:`jaxsym.theory.saddle`) for a study with one static group and
    full-batch training: the :class:`~jaxsym.theory.saddle.SaddleAnalysis`.

    Builds the study's network at ``sigma_b = 0`` (its first grid point otherwise), in float64,
    runs it to the collapsed point with gradient descent at the study's learning rate and takes
    the Hessian there; ``local_slope`` follows a random bias perturbation (hidden layers only,
    made antisymmetric) for ``trajectory_steps`` (default: the study's step count).

    With ``require_reached=False`` an unreached point is returned with ``reached=False`` (the
    report then flags the prediction as invalid) instead of raising.

    Raises:
      ValueError: the study has several static groups or uses minibatches.
      SaddleNotReached: ``||grad|| > grad_tol`` after ``max_steps`` (with ``require_reached``).
    """
    import jax
    import jax.numpy as jnp

    from jaxsym.core import init
    from jaxsym.theory import saddle

    task = study.make_task(0)
    groups = plan.plan_groups(study, task)
    if len(groups) != 1:
        raise ValueError(f"analyse_saddle needs one static group, {study.name} has "
                         f"{len(groups)}")
    spec = groups[0].spec
    x, y = _float64_data(task, spec.loss)
    if not _full_batch(study, task):
        raise ValueError("analyse_saddle needs full-batch training (train.batch_size = 0)")
    knobs = _float64_knobs(plan.knob_table(study)[groups[0].grid_indices[0]])
    params = init.init_params(jax.random.key(study.get("seeds.root")),
                              {**knobs, "sigma_b": jnp.zeros((), jnp.float64)},
                              replace(spec, dtype="float64"))
    lr = float(knobs["learning_rate"])
    # the collapsed point is a critical point: found with plain gradient descent for every
    # optimizer (momentum converges to the same point from the same start)
    point, steps, grad_norm = saddle.collapsed_point(params, x, y, spec.activation, spec.loss,
                                                     lr, max_steps, grad_tol)
    reached = grad_norm <= grad_tol
    if require_reached and not reached:
        raise saddle.SaddleNotReached(
            f"{study.name}: gradient descent from the symmetric init did not reach the collapsed "
            f"point (|grad| = {grad_norm:.1e} > {grad_tol:g} after {steps} steps); the saddle "
            "Hessian does not describe this trajectory")
    spectrum = saddle.saddle_spectrum(point, x, y, spec.activation, spec.loss)
    slope = (saddle.predicted_slope(lr, spectrum.lambda_min, spec.optimizer)
             if spec.optimizer != "adam" and spectrum.lambda_min < 0 else None)
    noise = jax.tree.map(jnp.zeros_like, params)
    for layer in noise[:-1]:
        b = jax.random.normal(jax.random.key(1), layer["b"].shape, jnp.float64)
        layer["b"] = b - b.mean()
    growth = saddle.linearised_growth(params, noise, x, y, spec.activation, spec.loss, lr,
                                      trajectory_steps or spec.steps, spec.optimizer)
    with np.errstate(divide="ignore"):
        local = np.where(growth > 0, math.log(10.0) / np.maximum(growth, 1e-300), np.inf)
    return saddle.SaddleAnalysis(spectrum, steps, lr, spec.optimizer, slope, local, reached,
                                 grad_norm)


@with_float64
def decayed_endpoints(study, max_steps: int = 50_000, grad_tol: float = 1e-9) -> dict:
    """The antisymmetric block at the (decayed) collapsed point of every cell and data draw of
    a one-hidden-layer, full-batch, constant-weight study (:mod:`jaxsym.theory.splitting`,
    "Weight decay"): gradient descent on ``L + (lambda / 2) ||theta||^2`` from the symmetric
    init (:func:`jaxsym.theory.saddle.collapsed_point`, projected onto the symmetric subspace,
    at the study's learning rate), then ``B_lambda = B + lambda I`` there.

    Returns:
      ``{(cell, draw): {...}}`` with ``cell`` as in :func:`classify_study` and the values
      ``lambda_min`` (of B_lambda: < 0 means the decayed collapsed point is a saddle in the
      antisymmetric directions, so every sigma_b > 0 eventually breaks; > 0: it heals),
      ``splitting_min`` (lambda_min(S) + lambda), ``schur_min`` (one output: the smallest
      eigenvalue of ``S + lambda (I - u u^T / v^2)``, whose sign is B_lambda's at an exact
      critical point with v != 0; nan otherwise), ``balance`` (``|u| / |v|``), ``norm``
      (``||theta*||``), ``reached`` (``||grad|| <= grad_tol`` within ``max_steps``),
      ``grad_norm`` and ``steps``.

    Raises:
      ValueError: more than one hidden layer, or minibatch training.
    """
    import jax

    from jaxsym.core import init
    from jaxsym.study.config import NUMERIC_AXES
    from jaxsym.theory import saddle, splitting

    if study.get("model.depth") != 2:
        raise ValueError(f"{study.name}: decayed_endpoints needs one hidden layer "
                         f"(model.depth = 2), got depth {study.get('model.depth')}")
    numeric = [a for a in study.grid_axes if a in NUMERIC_AXES and a != "sigma_b"]
    table = plan.knob_table(study)
    out = {}
    for draw in range(study.get("task.draws")):
        task = study.make_task(draw)
        if not _full_batch(study, task):
            raise ValueError(f"{study.name}: decayed_endpoints needs full-batch training")
        for group in plan.plan_groups(study, task):
            spec = group.spec
            x, y = _float64_data(task, spec.loss)
            for g in group.grid_indices:
                row = table[g]
                values = {k: float(row[i]) for i, k in enumerate(core_spec.KNOBS)}
                key = (group.categorical + tuple((a, values[a]) for a in numeric), draw)
                if key in out:
                    continue
                params = init.init_params(
                    jax.random.key(0), _float64_knobs(row, sigma_b=0.0),
                    core_spec.Architecture(spec.layer_sizes, spec.fan_in_scaled, "float64"))
                lam = values["weight_decay"]
                point, steps, grad_norm = saddle.collapsed_point(
                    params, x, y, spec.activation, spec.loss, values["learning_rate"],
                    max_steps, grad_tol, weight_decay=lam)
                block = splitting.antisymmetric_block(point, x, y, spec.activation, spec.loss,
                                                      weight_decay=lam)
                u = np.concatenate([np.asarray(point[0]["W"][0], np.float64),
                                    [float(point[0]["b"][0])]])
                v = np.asarray(point[1]["W"][:, 0], np.float64)
                schur = math.nan
                if v.size == 1 and lam > 0 and abs(v[0]) > 0:
                    schur = float(np.linalg.eigvalsh(
                        block.S + lam * (np.eye(u.size) - np.outer(u, u) / v[0] ** 2))[0])
                theta = np.concatenate([np.ravel(np.asarray(leaf, np.float64))
                                        for layer in point for leaf in layer.values()])
                out[key] = {"lambda_min": block.lambda_min,
                            "splitting_min": block.splitting_min, "schur_min": schur,
                            "balance": float(np.linalg.norm(u) / max(np.linalg.norm(v),
                                                                     1e-300)),
                            "norm": float(np.linalg.norm(theta)),
                            "reached": bool(grad_norm <= grad_tol),
                            "grad_norm": float(grad_norm), "steps": int(steps)}
    return out


@with_float64
def noisy_escape_times(study, chunk: int = 128, rate_window: float = 0.5) -> dict:
    """Per-network predictions of a NOISY study (minibatches and/or label noise; full batch
    allowed as the deterministic reference): the linearised escape
    (:func:`jaxsym.theory.escape.noisy_escapes`) along each network's own noisy symmetric
    trajectory, i.e. with the minibatch rows and label noise the engine draws for that network
    (``key_batches = split(key)[1]``, label key ``fold_in(key, 3)``), and its own deviation
    norm ``a = sigma_b ||d||`` (:func:`deviation_norms`). Constant or zero weights, one hidden
    layer, data draw 0 only, float64.

    Per grid point ``g``: ``{"time": (n_seeds,)`` predicted steps to break (``inf``: not within
    the study's steps), ``"rate": (n_seeds,)`` the finite-time top Lyapunov exponent of the
    antisymmetric linear map each network follows (natural log per step, from the fall of the
    log break amplitude over the last ``rate_window`` of the steps), ``"final_loss"`` the
    clean full-batch loss of each symmetric trajectory at the end, ``"log_amplitude":
    (n_seeds, n_checkpoints)`` the (norm-mode) log break amplitude at the record checkpoints:
    minus the log growth of the deviation since step 0, up to a bounded geometry factor, to
    compare with the measured diversity's growth between checkpoints}.

    Per static group with full batch and no label noise, ``("saddle", categorical, lr)``: the
    deterministic reference of :func:`_deterministic_rate` (the Hessian's rate ``ln r`` at the
    collapsed point and the full-batch map's rate once the trajectory is there).

    Raises:
      ValueError: more than one hidden layer, several data draws, or weights other than
        constant / zero.
    """
    import jax
    import jax.numpy as jnp

    from jaxsym.theory.escape import noisy_escapes

    if study.get("model.depth") != 2 or study.get("task.draws") != 1:
        raise ValueError(f"{study.name}: the noisy escape is predicted for one hidden layer "
                         "and one data draw")
    modes = dict(study.grid).get("weight_mode", (study.get("init.weight_mode"),))
    if not set(modes) <= {"constant", "zero"}:
        raise ValueError(f"{study.name}: the noisy escape needs identical units (weight_mode "
                         f"constant or zero), got {', '.join(modes)}")
    task = study.make_task(0)
    n_seeds = study.networks_per_point
    norms = deviation_norms(study, range(n_seeds))
    table = plan.knob_table(study)
    root = jax.random.key(study.get("seeds.root"))
    knob = {k: i for i, k in enumerate(core_spec.KNOBS)}
    out = {}
    for group in plan.plan_groups(study, task):
        spec = group.spec
        x, y = _float64_data(task, spec.loss)
        for g in group.grid_indices:
            row = table[g]
            params = _symmetric_start(row, spec)
            keys = jax.vmap(lambda s, g=g: jax.random.fold_in(jax.random.fold_in(root, g), s))(
                jnp.arange(n_seeds, dtype=jnp.int32))
            batch_keys = jax.vmap(lambda k: jax.random.split(k)[1])(keys)
            label_keys = jax.vmap(lambda k: jax.random.fold_in(k, 3))(keys)
            label_noise = float(row[knob["label_noise"]]) if spec.label_noisy else 0.0
            times, rates, losses, curves = [], [], [], []
            checkpoints = np.asarray(spec.checkpoints)
            for start in range(0, n_seeds, chunk):
                part = slice(start, min(start + chunk, n_seeds))
                preds = noisy_escapes(
                    params, x, y, spec.activation, spec.loss, spec.optimizer,
                    float(row[knob["learning_rate"]]), spec.steps, spec.diversity_threshold,
                    spec.batch_size, batch_keys[part], label_noise, label_keys[part],
                    float(row[knob["weight_decay"]]) if spec.decayed else 0.0)
                amplitude = float(row[knob["sigma_b"]]) * norms[g, part]
                for pred, a in zip(preds, amplitude):
                    times.append(float(pred.break_time(a)) if a > 0 else math.inf)
                    rates.append(_late_rate(pred, rate_window))
                    losses.append(float(pred.loss[-1]))
                    curves.append(pred.log_norm_amplitude[0][checkpoints])
            out[int(g)] = {"time": np.asarray(times), "rate": np.asarray(rates),
                           "final_loss": np.asarray(losses),
                           "log_amplitude": np.asarray(curves)}
            lr = float(row[knob["learning_rate"]])
            key = ("saddle", group.categorical, lr)
            if spec.batch_size in (0, x.shape[0]) and label_noise == 0 and key not in out:
                out[key] = _deterministic_rate(params, x, y, spec, lr)
    return out


def _late_rate(pred, window: float) -> float:
    """The fall per step of the (norm-mode) log break amplitude of hidden layer 1 over the last
    ``window`` of the steps: the tangent's log growth per step (the geometry factor is
    bounded), i.e. the finite-time top Lyapunov exponent of the map it follows."""
    t1 = pred.steps
    return _rate_between(pred, int(round(t1 * (1.0 - window))), t1)


def _rate_between(pred, t0: int, t1: int) -> float:
    """The fall per step of the log break amplitude of hidden layer 1 from step t0 to t1."""
    curve = pred.log_norm_amplitude[0]
    if not (np.isfinite(curve[t0]) and np.isfinite(curve[t1])) or t1 == t0:
        return math.nan
    return float((curve[t0] - curve[t1]) / (t1 - t0))


def _deterministic_rate(params, x, y, spec, lr: float, max_steps: int = 200_000,
                        grad_tol: float = 1e-10, window: int = 1000) -> dict:
    """The deterministic reference of a full-batch cell: ``{"hessian": ln r}`` of the collapsed
    point's Hessian (:func:`jaxsym.theory.saddle.growth_factor`; None where gradient descent
    does not reach the point within ``max_steps``, the point is not a saddle, or Adam), and
    ``"map"``: the growth rate of the full-batch linearised map (the code path of the noisy
    prediction) over the ``window`` steps after the symmetric trajectory reached that point,
    which must reproduce it; ``"reached_at"``: the steps gradient descent took."""
    from jaxsym.theory import saddle
    from jaxsym.theory.escape import linearised_escape

    point, steps, grad_norm = saddle.collapsed_point(params, x, y, spec.activation, spec.loss,
                                                     lr, max_steps, grad_tol)
    out = {"hessian": None, "map": None, "reached_at": int(steps)}
    if grad_norm > grad_tol or spec.optimizer == "adam":
        return out
    spectrum = saddle.saddle_spectrum(point, x, y, spec.activation, spec.loss)
    if spectrum.lambda_min >= 0:
        return out
    out["hessian"] = float(math.log(saddle.growth_factor(lr, spectrum.lambda_min,
                                                         spec.optimizer)))
    total = int(steps) + window
    pred = linearised_escape(params, x, y, spec.activation, spec.loss, spec.optimizer, lr,
                             total, spec.diversity_threshold)
    out["map"] = _rate_between(pred, int(steps), total)
    return out
