"""Numbers of the plateau section: the small-weight plateau and symmetry breaking, two clocks
measured in one experiment (every weight layer constant at scale eps, hidden biases
N(0, sigma_b^2), eps and sigma_b varied together).

Contract: :func:`analyse` ``(entries) -> dict`` for :mod:`jaxsym.reporting.plateau`; pure (no
theory to compute: the plateau law's exponent is Rawal & DeWeese's ``r - 2``).

Per run (one depth ``L``; every weight layer is at the small scale, so ``r = L`` layers sit at
the bottleneck scale) and activation:

* the plateau's end: the first step at which the training loss is <= the run's loss threshold
  (``time_to_converge``; the threshold is set to about half the plateau loss), as a
  Kaplan-Meier median with its 95% CI per eps (all sigma_b pooled), and per (eps, sigma_b);
  ``sigma_spread`` is the largest relative distance between the per-sigma_b medians at one eps
  (0: the plateau ignores the bias spread);
* its exponent: the plateau of a data draw is the median over its networks; per draw, the OLS
  slope of ``ln tau`` against ``ln(1/eps)`` over the :data:`FIT_POINTS` smallest eps; the
  exponent is the mean over draws with its Student-t 95% CI (draws are the independent units:
  within one draw the networks differ only in their biases). Rawal & DeWeese (2026) predict
  ``tau = Theta(eps^-(r-2))``: exponent ``r - 2``, ``ok`` when it lies in the CI (r = 2:
  ``tau ~ a + c log(1/eps)``, whose local exponent ``c / tau`` reaches 0 only as eps -> 0: not
  tested, ``ok`` None); the local exponents between neighbouring eps show the approach;
* the break: hidden layer 1's step to break per (eps, sigma_b) (KM median), and per eps the
  log-law fit ``T = a + b log10(1/sigma_b)`` (:func:`jaxsym.analysis.stats.fit_log_law`, slope
  ``b`` in steps per decade of sigma_b with its bootstrap CI, over the sigma_b at which every
  network broke);
* the order of the clocks: of the networks that both leave the plateau and break layer 1
  within the budget, how many break after the plateau's end; and how far the plateau's end
  and the break (smallest sigma_b) move between the largest and the smallest eps.
"""

from __future__ import annotations

import math

import numpy as np

from jaxsym.analysis import stats
from jaxsym.analysis.common import study_of

__all__ = ["FIT_POINTS", "EXPONENT_TOLERANCE", "predicted_exponent", "draw_exponents", "analyse"]

#: the exponent is fitted over this many smallest eps of the grid (all of them if fewer)
FIT_POINTS = 4
#: Theta(eps^-(r-2)) is a law for eps -> 0: at finite eps the exponent is also stated as within
#: this relative distance of r - 2 (besides whether r - 2 lies in its CI)
EXPONENT_TOLERANCE = 0.1


def predicted_exponent(depth: int) -> int:
    """Rawal & DeWeese's plateau exponent ``r - 2`` with every one of the ``depth`` weight
    layers at the small scale (r = depth); 0 stands for ``log(1/eps)`` at r = 2."""
    return depth - 2


def draw_exponents(eps, times, reached, draws) -> np.ndarray:
    """Per data draw, the OLS slope of ``ln(tau)`` against ``ln(1/eps)``.

    Args:
      eps: ``(n_eps,)`` weight scales; times, reached: ``(n_eps, networks)`` plateau ends and
        whether each was reached; draws: ``(networks,)`` each network's data draw.

    Returns ``(n_draws,)``; nan for a draw with a median not reached at some eps.
    """
    eps = np.asarray(eps, float)
    x = np.log(1.0 / eps)
    out = []
    for d in np.unique(draws):
        mine = np.asarray(draws) == d
        medians = []
        for t, r in zip(np.asarray(times)[:, mine], np.asarray(reached)[:, mine]):
            m = stats.median_time(t, r)
            medians.append(m.median if m.reached else math.nan)
        y = np.log(np.asarray(medians, float))
        out.append(np.polyfit(x, y, 1)[0] if np.all(np.isfinite(y)) else math.nan)
    return np.asarray(out)


def _plateau(cell):
    """``(times, reached)`` of the plateau's end of every network of ``cell`` (over seed)."""
    return (cell.time_to_converge.values.astype(float), cell.converged.values.astype(bool))


def _break(cell):
    """``(times, broken)`` of hidden layer 1's break."""
    return (cell.time_to_break_layer.values[:, 0].astype(float),
            cell.broken_layer.values[:, 0].astype(bool))


def _spread(medians) -> float:
    """Largest relative distance between medians (nan if one is not reached)."""
    values = np.asarray([m.median if m.reached else math.nan for m in medians], float)
    if not np.all(np.isfinite(values)):
        return math.nan
    return float((values.max() - values.min()) / values.min())


def _activation_numbers(ds, depth: int) -> dict:
    """The numbers of one activation's cells (``ds`` over weight_value, sigma_b, seed)."""
    eps = np.sort(ds.weight_value.values)[::-1]
    sigmas = np.sort(ds.sigma_b.values)
    draws = np.arange(ds.sizes["seed"]) // study_of(ds).get("seeds.count")
    budget = int(ds.attrs["steps"])
    rows, pooled_t, pooled_r = [], [], []
    for e in eps:
        at = ds.sel(weight_value=e)
        per_sigma, breaks, order = [], [], [0, 0]
        times, reached = [], []
        for s in sigmas:
            cell = at.sel(sigma_b=s)
            t, r = _plateau(cell)
            times.append(t)
            reached.append(r)
            per_sigma.append(stats.median_time(t, r))
            bt, bk = _break(cell)
            breaks.append(stats.median_time(np.where(bk, bt, budget), bk))
            both = r & bk
            order[0] += int((both & (bt > t)).sum())
            order[1] += int(both.sum())
        t, r = np.concatenate(times), np.concatenate(reached)
        # the draw of a network is the same at every sigma_b: one row per draw, sigma_b pooled
        pooled_t.append(np.stack(times, axis=0).T.ravel())
        pooled_r.append(np.stack(reached, axis=0).T.ravel())
        fit = _log_law(at, sigmas)
        rows.append({"eps": float(e), "plateau": stats.median_time(t, r),
                     "per_sigma": per_sigma, "sigma_spread": _spread(per_sigma),
                     "breaks": breaks, "log_law": fit, "after": order[0], "both": order[1]})
    for i in range(1, len(rows)):
        a, b = rows[i - 1]["plateau"], rows[i]["plateau"]
        rows[i]["local"] = (math.log(b.median / a.median) / math.log(rows[i - 1]["eps"]
                                                                      / rows[i]["eps"])
                            if a.reached and b.reached else math.nan)
    rows[0]["local"] = math.nan
    fit_rows = slice(max(len(eps) - FIT_POINTS, 0), len(eps))
    pooled_draws = np.repeat(draws, len(sigmas))
    exponents = draw_exponents(eps[fit_rows], np.stack(pooled_t)[fit_rows],
                               np.stack(pooled_r)[fit_rows], pooled_draws)
    exponent = stats.mean_interval(exponents[np.isfinite(exponents)])
    predicted = predicted_exponent(depth)
    if predicted > 0:
        ok = exponent.n >= 2 and exponent.low <= predicted <= exponent.high
        distance = (0.0 if ok else float(min(abs(exponent.low - predicted),
                                             abs(exponent.high - predicted))))
        close = exponent.n >= 2 and abs(exponent.mean - predicted) <= (EXPONENT_TOLERANCE
                                                                        * predicted)
    else:  # r = 2: log(1/eps), exponent 0 only as eps -> 0 (c / tau at finite eps): no test
        ok, distance, close = None, math.nan, None
    first, last = rows[0], rows[-1]

    def shift(a, b):
        return b.median - a.median if a.reached and b.reached else math.nan

    delay = {"plateau": shift(first["plateau"], last["plateau"]),
             "break": shift(first["breaks"][0], last["breaks"][0])}
    return {"rows": rows, "exponent": exponent, "draw_exponents": exponents,
            "n_draws": int(np.isfinite(exponents).sum()), "predicted": predicted, "ok": ok,
            "distance": distance, "close": close, "delay": delay, "fit_eps": (float(eps[fit_rows][0]), float(eps[-1])),
            "sigmas": [float(s) for s in sigmas]}


def _log_law(at, sigmas):
    """Layer 1's log-law fit over the sigma_b at which EVERY network broke within the budget
    (censored times would bias the medians low), at one eps; None with fewer than 2 such."""
    sigma, times = [], []
    for s in sigmas:
        bt, bk = _break(at.sel(sigma_b=s))
        if bk.all():
            sigma.append(np.full(bt.shape, float(s)))
            times.append(bt)
    if len(sigma) < 2:
        return None
    return stats.fit_log_law(np.concatenate(sigma), np.concatenate(times))


def analyse(entries) -> dict:
    """Raises ValueError (one line) for a run without the grid axes weight_value and sigma_b.

    ``{"runs": [{"ds", "depth", "activations": {name: numbers}}]}`` in order of depth; per
    activation: ``rows`` (one per eps, largest first: ``plateau`` median, ``per_sigma``
    medians, ``sigma_spread``, ``local`` exponent, layer-1 ``breaks`` per sigma_b, its
    ``log_law`` fit, ``after`` of ``both`` networks breaking after the plateau's end), the
    fitted ``exponent`` (mean over draws, Student-t CI), the ``predicted`` one, ``ok`` (None: not
    tested), ``distance``, ``close`` (within :data:`EXPONENT_TOLERANCE`), ``delay`` (how many
    steps the plateau's end and layer 1's median break at the smallest sigma_b move from the
    largest eps to the smallest); ``target``: of the (depth >= 3, activation) rows, how many
    have the predicted exponent inside the CI (``met``) and within the tolerance
    (``close``)."""
    runs = []
    for ds, _ in entries:
        study = study_of(ds)
        missing = [a for a in ("weight_value", "sigma_b") if a not in ds.dims]
        if missing:
            raise ValueError(f"the plateau section needs grid axes weight_value and sigma_b; "
                             f"study '{ds.attrs.get('name', '?')}' has no "
                             f"{' or '.join(missing)} axis")
        depth = len(ds.attrs["layer_sizes"]) - 1
        activations = dict(study.grid).get("activation", (study.get("model.activation"),))
        numbers = {}
        for activation in activations:
            sub = ds.sel(activation=activation) if "activation" in ds.dims else ds
            numbers[activation] = _activation_numbers(sub, depth)
        runs.append({"ds": ds, "depth": depth, "activations": numbers})
    runs.sort(key=lambda r: r["depth"])
    tested = [(run["depth"], name, a) for run in runs for name, a in run["activations"].items()
              if a["ok"] is not None]
    return {"runs": runs, "target": {"met": sum(bool(a["ok"]) for *_, a in tested),
                                     "close": sum(bool(a["close"]) for *_, a in tested),
                                     "total": len(tested),
                                     "misses": [(d, name, a["distance"])
                                                for d, name, a in tested if not a["ok"]]}}
