"""Numbers of the calibration section: with constant W and random biases, how large must
sigma_b be to train as well as random W, and at what cost?

Contract: :func:`analyse` ``(entries) -> dict`` for :mod:`jaxsym.reporting.calibrate`
(``entries``: ``[(dataset, run_dir)]`` of the calibrate runs: per task and optimizer, one run
of constant W over ``weight_value x sigma_b x learning_rate x activation`` and one of the
random-W baselines over ``weight_mode x learning_rate x activation``); pure, no JAX.

Definitions (stated once, used everywhere in the section):

* **Tuning.** Every init cell (a baseline mode, or one ``(c, sigma_b)`` of constant W) gets
  the learning rate of its grid with the best mean final VALIDATION score (accuracy; minus
  the loss for regression) over its networks (all data draws and seeds); the test set is
  read only after that choice.
* **Glorot's target**, per data draw d: ``(1 - ACCURACY_MARGIN)`` x the mean test accuracy
  of Glorot's networks on draw d at Glorot's tuned learning rate (regression:
  ``LOSS_FACTOR`` x their geometric-mean test loss: losses spread by factors across draws).
* **Success** of a network: its final test score meets its draw's target. **Time to target**:
  the first record step whose test score meets it (right-censored at the budget); the cost
  factor is the ratio of the censored medians, init over Glorot, with a bootstrap CI ("n/a"
  when Glorot's own median is not reached).
* **Test score** of a cell: the mean test accuracy with its Student-t 95% CI clipped to
  [0, 1] (regression: the geometric-mean test loss, CI on log10).
* **sigma_90**: the sigma_b at which a logistic fit of P(success) in log10(sigma_b) reaches
  0.9 on the rising branch, with a stratified bootstrap CI
  (:func:`jaxsym.analysis.stats.fit_sigma_p`).
* **Recommendation** per (task, optimizer, activation): the constant-W cell with the best mean
  VALIDATION score. Verdict against the pooled target (the same rule on all of Glorot's
  networks): "yes" when its test score meets it, "no" when even the favourable end of its
  CI misses it, else "unclear". Its **near ties**: the cells whose mean validation score
  reaches the lower end of the best one's 95% CI (the validation split cannot separate them).
* **W = 0 + random b** (full preset, sgd and Adam): the same tuning per sigma_b, then the
  sigma_b with the best mean validation score and its verdict, like the recommendation.
* **Unit groups**: Glorot W shared by k groups of identical hidden units (b = 0), tuned per k;
  "groups needed" is the smallest k whose verdict is "yes" (None: no k tried was enough).
* **Dropout on identical units** (full preset, sgd and Adam): constant W, b = 0, training-time
  dropout at rate p; tuned per p, then the p with the best mean validation score and its
  verdict, like W = 0 + random b.
* **The loss at a fixed task**: a task run with several losses is one (task, optimizer, loss)
  pair per loss, each with its own Glorot baseline, tuning and target; the task's first loss
  (its own) makes the main tables, the others ``loss_pairs``. The loss table compares like
  with like: where the other losses were run at fewer constant weights c than the own loss,
  the own loss is analysed again on those c only (``loss_reference``), so a verdict that
  changes with the loss is not a verdict that changes with how many c were tried.
"""

from __future__ import annotations

import numpy as np

from jaxsym.analysis import stats
from jaxsym.analysis.common import is_classification, study_sections, test_score

__all__ = ["ACCURACY_MARGIN", "LOSS_FACTOR", "P_TARGET", "BASELINE_MODES", "tune", "targets",
           "analyse_pair", "analyse", "loss_changes", "loss_table_pairs", "near_ties"]

#: "trains as well": test accuracy within 2% (relative) of Glorot's
ACCURACY_MARGIN = 0.02
#: regression: test loss at most this factor above Glorot's (geometric mean)
LOSS_FACTOR = 2.0
#: the P(success) that sigma_90 asks for
P_TARGET = 0.9
#: the random-W baselines, in the order the tables show them
BASELINE_MODES = ("glorot", "torch_default", "normal")


def _final(da):
    return da.isel(step=-1) if "step" in da.dims else da


def _validation_score(ds):
    """Per-network final validation score, higher is better (NaN -> -inf)."""
    score = (_final(ds.val_accuracy) if is_classification(ds) else -_final(ds.val_loss))
    return score.astype(np.float64).fillna(-np.inf)


def tune(cell):
    """``(learning_rate, cell at it)``: the learning rate of ``cell``'s ``learning_rate`` axis
    whose networks have the best mean final validation score (the smallest on a tie)."""
    means = _validation_score(cell).where(lambda v: np.isfinite(v), -1e300).mean("seed")
    best = int(np.argmax(means.values))
    return float(cell.learning_rate.values[best]), cell.isel(learning_rate=best)


def _test_curve(cell):
    return cell.test_accuracy_curve if "test_accuracy_curve" in cell else cell.test_loss_curve


def _test_score(cell, classification: bool) -> np.ndarray:
    return (cell.test_accuracy if classification else cell.test_loss).values.astype(float)


def _meets(values, target, classification: bool):
    return values >= target if classification else values <= target


def _pooled_target(score, classification: bool) -> float:
    """The target of a set of Glorot scores: (1 - margin) x mean accuracy, or LOSS_FACTOR x
    the geometric-mean loss."""
    if classification:
        return float(np.mean(score) * (1 - ACCURACY_MARGIN))
    return float(LOSS_FACTOR * 10.0 ** np.mean(np.log10(np.maximum(score, 1e-300))))


def targets(glorot, draws: int, classification: bool) -> np.ndarray:
    """``(draws,)`` Glorot's target per data draw (module doc); network ``s`` trained on draw
    ``s // (n_seeds / draws)``."""
    score = _test_score(glorot, classification)
    per_draw = score.reshape(draws, -1)
    return np.array([_pooled_target(row, classification) for row in per_draw])


def _network_targets(cell, draw_targets: np.ndarray) -> np.ndarray:
    n = cell.sizes["seed"]
    return np.repeat(draw_targets, n // len(draw_targets))


def _time_to_target(cell, network_targets, classification: bool):
    """``(times, events)`` per network: the first record step whose test score meets the
    network's target (the budget, not reached, if none)."""
    curve = _test_curve(cell).transpose("seed", "step").values
    hit = _meets(curve, network_targets[:, None], classification)
    steps = cell.step.values
    first = np.where(hit.any(axis=1), steps[np.argmax(hit, axis=1)], steps[-1])
    return first.astype(float), hit.any(axis=1)


def _cell_numbers(cell, lr: float, reference, classification: bool) -> dict:
    """What the tables show of one tuned cell (``reference``: the draw targets and Glorot's
    times to them)."""
    draw_targets, glorot_times = reference
    score = _test_score(cell, classification)
    network_targets = _network_targets(cell, draw_targets)
    times, events = _time_to_target(cell, network_targets, classification)
    success = _meets(score, network_targets, classification)
    test = test_score(cell)
    return {"learning_rate": lr, "n": int(score.size), "test": test, "success": success,
            "p_success": float(np.mean(success)),
            "cost": stats.median_ratio(times, events, *glorot_times, n_boot=1000),
            "median_steps": stats.median_time(times, events),
            "val": float(np.mean(_validation_score(cell).values)),
            "val_interval": stats.mean_interval(_validation_score(cell).values),
            "p_broken": float(cell.broken.mean()),
            "p_functional": float(cell.functionally_broken.mean()),
            "effective_rank": float(_final(cell.effective_rank).isel(layer=0).median())}


def _baselines(base, activation, draws: int, classification: bool):
    """Each baseline mode's tuned numbers for one activation, Glorot's per-draw targets and
    its pooled target, and the reference (targets, Glorot's times) the other cells use."""
    tuned = {}
    for mode in base.weight_mode.values:
        cell = base.sel(weight_mode=mode, activation=activation).isel(weight_value=0, sigma_b=0)
        tuned[str(mode)] = tune(cell)
    glorot = tuned["glorot"][1]
    draw_targets = targets(glorot, draws, classification)
    reference = (draw_targets, _time_to_target(glorot, _network_targets(glorot, draw_targets),
                                               classification))
    rows = {mode: _cell_numbers(cell, lr, reference, classification)
            for mode, (lr, cell) in tuned.items()}
    pooled = _pooled_target(_test_score(glorot, classification), classification)
    for numbers in rows.values():  # every baseline and alternative judged like the recipe
        numbers["verdict"] = _verdict(numbers["test"], pooled, classification)
    return rows, pooled, reference


def _constant_cells(const, activation, reference, classification):
    """``{(c, sigma_b): numbers}`` of every tuned constant-W cell of one activation."""
    one = const.sel(activation=activation).isel(weight_mode=0)
    cells = {}
    for c in one.weight_value.values:
        for sigma in one.sigma_b.values:
            lr, cell = tune(one.sel(weight_value=c, sigma_b=sigma))
            cells[(float(c), float(sigma))] = _cell_numbers(cell, lr, reference, classification)
    return cells


def _sigma_fits(cells) -> dict:
    """``{c: SigmaFit}`` of P(success) against sigma_b (:data:`P_TARGET`)."""
    fits = {}
    for c in sorted({c for c, _ in cells}):
        sigmas = sorted(s for cc, s in cells if cc == c)
        x = np.concatenate([np.full(cells[(c, s)]["n"], s) for s in sigmas])
        y = np.concatenate([cells[(c, s)]["success"] for s in sigmas])
        fits[c] = stats.fit_sigma_p(x, y, P_TARGET)
    return fits


def _verdict(test, target: float, classification: bool) -> str:
    """"yes" when the test score meets ``target``, "no" when the favourable end of its CI
    misses it, else "unclear"."""
    if _meets(test.mean, target, classification):
        return "yes"
    favourable = test.high if classification else test.low
    if np.isfinite(favourable) and not _meets(favourable, target, classification):
        return "no"
    return "unclear"


def near_ties(cells, best) -> list:
    """The keys of ``cells`` whose mean validation score reaches the lower end of the 95% CI
    of ``best``'s (``best`` included): the cells the validation split cannot tell from the
    chosen one, so another machine's rounding may choose any of them."""
    low = cells[best]["val_interval"].low
    if not np.isfinite(low):
        return [best]
    return sorted(k for k, numbers in cells.items() if numbers["val"] >= low or k == best)


def _recommend(cells, fits, target, classification) -> dict:
    """The constant-W cell with the best mean validation score, its verdict, and its near
    ties (:func:`near_ties`)."""
    (c, sigma), best = max(cells.items(), key=lambda item: item[1]["val"])
    return {"c": c, "sigma_b": sigma, "cell": best, "fit": fits[c],
            "verdict": _verdict(best["test"], target, classification),
            "near": near_ties(cells, (c, sigma))}


def _best_of_axis(one, axis: str, reference, target, classification) -> dict:
    """Each value of ``axis`` tuned (:func:`tune`): ``{"cells": {value: numbers}, "best": the
    value of the best mean validation score, "cell": its numbers, "verdict"}``."""
    cells = {}
    for value in one[axis].values:
        lr, cell = tune(one.sel({axis: value}))
        cells[float(value)] = _cell_numbers(cell, lr, reference, classification)
    best = max(cells, key=lambda v: cells[v]["val"])
    return {"cells": cells, "best": best, "cell": cells[best],
            "verdict": _verdict(cells[best]["test"], target, classification)}


def _dropout_cells(dropped, activation, reference, target, classification) -> dict:
    """Dropout on identical units (constant W, b = 0) for one activation: each rate tuned,
    the best rate by validation and its verdict (:func:`_best_of_axis`)."""
    one = dropped.sel(activation=activation).isel(weight_mode=0, weight_value=0, sigma_b=0)
    return _best_of_axis(one, "dropout", reference, target, classification)


def _zero_cells(zero, activation, reference, target, classification) -> dict:
    """W = 0 + random b for one activation: ``{"cells": {sigma_b: numbers}, "best": sigma_b
    of the best mean validation score, "verdict", "fit": SigmaFit of P(success)}``."""
    one = zero.sel(activation=activation).isel(weight_mode=0, weight_value=0)
    best = _best_of_axis(one, "sigma_b", reference, target, classification)
    cells = best["cells"]
    x = np.concatenate([np.full(cells[s]["n"], s) for s in sorted(cells)])
    y = np.concatenate([cells[s]["success"] for s in sorted(cells)])
    return {**best, "fit": stats.fit_sigma_p(x, y, P_TARGET)}


def _group_cells(grouped, activation, reference, target, classification) -> dict:
    """Unit groups for one activation: ``{"cells": {k: numbers}, "verdicts": {k: verdict},
    "needed": the smallest k whose verdict is "yes", or None}``."""
    one = grouped.sel(activation=activation).isel(weight_mode=0, weight_value=0, sigma_b=0)
    cells, verdicts = {}, {}
    for k in one.groups.values:
        lr, cell = tune(one.sel(groups=k))
        cells[int(k)] = _cell_numbers(cell, lr, reference, classification)
        verdicts[int(k)] = _verdict(cells[int(k)]["test"], target, classification)
    needed = next((k for k in sorted(cells) if verdicts[k] == "yes"), None)
    return {"cells": cells, "verdicts": verdicts, "needed": needed}


def analyse_pair(const, base, zero=None, grouped=None, dropped=None) -> dict:
    """Every number of one (task, optimizer, loss): per activation the baselines, the
    constant-W cells, the sigma_90 fits and the recommendation; with the W = 0 run (``zero``),
    the unit-group run (``grouped``) and the dropout run (``dropped``) of the pair, their
    numbers too (``row["zero"]``, ``row["groups"]``, ``row["dropout"]``; None without)."""
    classification = is_classification(const)
    sections = study_sections(const)
    draws = int(sections["task"]["draws"])
    rows = []
    for activation in const.activation.values:
        baselines, target, reference = _baselines(base, activation, draws, classification)
        cells = _constant_cells(const, activation, reference, classification)
        fits = _sigma_fits(cells)
        rows.append({"activation": str(activation), "baselines": baselines, "target": target,
                     "cells": cells, "fits": fits,
                     "recommendation": _recommend(cells, fits, target, classification),
                     "zero": (None if zero is None else
                              _zero_cells(zero, activation, reference, target,
                                          classification)),
                     "groups": (None if grouped is None else
                                _group_cells(grouped, activation, reference, target,
                                             classification)),
                     "dropout": (None if dropped is None else
                                 _dropout_cells(dropped, activation, reference, target,
                                                classification))})
    return {"task": sections["task"]["name"], "optimizer": sections["train"]["optimizer"],
            "loss": sections["train"]["loss"],
            "classification": classification, "steps": int(const.attrs["steps"]),
            "seeds": int(const.sizes["seed"]), "draws": draws,
            "learning_rates": [float(v) for v in const.learning_rate.values],
            "weight_values": [float(v) for v in const.weight_value.values],
            "rows": rows}


def _loss_reference(const, base, others) -> dict | None:
    """The own loss's pair on the constant weights every other loss of its (task, optimizer)
    was run with (``others``: their constant-W runs); None where that is all of them (the own
    pair already compares like with like) or none."""
    own = [float(v) for v in const.weight_value.values]
    common = [c for c in own if all(c in [float(v) for v in o.weight_value.values]
                                    for o in others)]
    if not common or common == own:
        return None
    return analyse_pair(const.sel(weight_value=common), base)


def _key(ds):
    sections = study_sections(ds)
    return (sections["task"]["name"], sections["train"]["optimizer"],
            sections["train"]["loss"])


def _run_kind(ds) -> str:
    """Which calibration run ``ds`` is: "base" (holds Glorot), "zero" (W = 0 only),
    "grouped" (the unit groups only), "dropped" (a dropout axis) or "const" (constant W)."""
    if "dropout" in ds.dims:
        return "dropped"
    modes = [str(m) for m in ds.weight_mode.values] if "weight_mode" in ds.dims else []
    if "glorot" in modes:
        return "base"
    return modes[0] if modes in (["zero"], ["grouped"]) else "const"


def analyse(entries) -> dict:
    """``{"pairs": [analyse_pair(...)]}`` per (task, optimizer, loss) present with both its
    constant-W run and its baseline run (in the order the runs came; with its W = 0,
    unit-group and dropout runs where present) with the task's first loss (its own: the
    recommendation and alternatives), ``"loss_pairs"`` the same for the task's other losses,
    ``"missing"``: the (task, optimizer, loss) of runs without a partner."""
    runs = {"const": {}, "base": {}, "zero": {}, "grouped": {}, "dropped": {}}
    order = []
    for ds, _ in entries:
        key = _key(ds)
        runs[_run_kind(ds)][key] = ds
        if key not in order:
            order.append(key)
    const, base = runs["const"], runs["base"]
    own = {}
    for task, _, loss in order:
        own.setdefault(task, loss)
    pairs = {k: analyse_pair(const[k], base[k], runs["zero"].get(k), runs["grouped"].get(k),
                             runs["dropped"].get(k))
             for k in order if k in const and k in base}
    missing = [k for k in order if not (k in const and k in base)]
    references = []
    for key in (k for k in pairs if k[2] == own[k[0]]):
        others = [const[k] for k in pairs if k[:2] == key[:2] and k != key]
        reference = _loss_reference(const[key], base[key], others) if others else None
        if reference is not None:
            references.append(reference)
    return {"pairs": [p for k, p in pairs.items() if k[2] == own[k[0]]],
            "loss_pairs": [p for k, p in pairs.items() if k[2] != own[k[0]]],
            "loss_reference": references, "missing": missing}


def loss_table_pairs(numbers) -> list:
    """The pairs the loss table and :func:`loss_changes` compare: every other-loss pair, and
    for its (task, optimizer) the own loss's ``loss_reference`` where there is one (the own
    loss on the same constant weights), else its main pair."""
    others = numbers.get("loss_pairs") or []
    refs = {(p["task"], p["optimizer"]): p for p in numbers.get("loss_reference") or []}
    own = [refs.get((p["task"], p["optimizer"]), p) for p in numbers["pairs"]
           if any(o["task"] == p["task"] and o["optimizer"] == p["optimizer"] for o in others)]
    return own + others


def loss_changes(numbers) -> tuple[int, int]:
    """``(changed, rows)``: of the (task, optimizer, activation) rows run with other losses,
    how many have a recommendation verdict that differs between the losses."""
    verdicts: dict = {}
    for pair in loss_table_pairs(numbers):
        for row in pair["rows"]:
            verdicts.setdefault((pair["task"], pair["optimizer"], row["activation"]),
                                {})[pair["loss"]] = row["recommendation"]["verdict"]
    tried = [v for v in verdicts.values() if len(v) > 1]
    return sum(len(set(v.values())) > 1 for v in tried), len(tried)
