"""Statistics of a results Dataset as xarray objects with their intervals.

The report, the figures and a notebook use the same functions; every statistic is computed per
grid point (over the ``seed`` dim, which pools the data draws), so the output keeps the
Dataset's grid dims and coordinates:

* :func:`p_event` / :func:`p_broken`: the fraction of networks with the event, with 95% Wilson
  bounds: ``p, low, high, k, n`` over the grid dims.
* :func:`median_time`: Kaplan-Meier median of a right-censored time (censored at the step
  budget), with the CI from inverting the log-log band: ``median, low, high, n_events``
  (``inf``: not reached within the budget).
* :func:`log_law`: the fit ``T = a + b log10(1/sigma_b)`` of the median times over sigma_b > 0,
  per combination of the other grid dims: ``a, b, b_low, b_high, n_points`` (NaN where fewer
  than 3 sigma_b values have >= 90% of their networks finished).
* :func:`summary`: P(broken), P(converged) and both median times in one Dataset.

>>> ds = jaxsym.load("runs/example")
>>> jaxsym.analysis.p_broken(ds).p.sel(sigma_b=1e-4)
"""

from __future__ import annotations

import itertools

import numpy as np

from jaxsym.analysis import stats
from jaxsym.core.records import NETWORK_DIMS

__all__ = ["grid_dims", "p_event", "p_broken", "median_time", "fit_curve", "log_law",
           "summary"]


def grid_dims(ds) -> tuple[str, ...]:
    """The grid dims of a results Dataset, in storage order."""
    return tuple(d for d in ds.broken.dims if d not in NETWORK_DIMS)


def _per_point(ds, function, names, var_attrs):
    """Apply ``function(dataset at one grid point) -> tuple`` at every grid point."""
    import xarray as xr

    dims = grid_dims(ds)
    shape = tuple(ds.sizes[d] for d in dims)
    out = {name: np.empty(shape) for name in names}
    for index in itertools.product(*(range(n) for n in shape)):
        point = ds.isel(dict(zip(dims, index)))
        for name, value in zip(names, function(point)):
            out[name][index] = value
    coords = {d: ds[d] for d in dims}
    return xr.Dataset({name: (dims, out[name], var_attrs[name]) for name in names},
                      coords=coords)


def p_event(ds, event: str = "broken", confidence: float = 0.95):
    """Fraction of networks per grid point with ``ds[event]`` True, with Wilson bounds."""
    k = ds[event].sum("seed")
    n = ds.sizes["seed"]
    low, high = stats.wilson_interval(k.values, np.full(k.shape, n), confidence)
    what = ds[event].attrs.get("long_name", event)
    result = k.to_dataset(name="k").drop_vars([c for c in k.coords if c not in k.dims])
    result["k"].attrs = {"long_name": f"networks with {what}", "units": "1"}
    result["n"] = ((), n, {"long_name": "networks per grid point (seeds x data draws)",
                           "units": "1"})
    result["p"] = (k.dims, k.values / n, {"long_name": f"P({event})", "units": "1"})
    for name, value in (("low", low), ("high", high)):
        result[name] = (k.dims, value, {
            "long_name": f"{'lower' if name == 'low' else 'upper'} {100 * confidence:g}% "
                         f"Wilson bound of P({event})", "units": "1"})
    return result


def p_broken(ds, confidence: float = 0.95):
    """:func:`p_event` of ``broken`` (symmetry broken within the budget)."""
    return p_event(ds, "broken", confidence)


def median_time(ds, time: str = "time_to_converge", event: str | None = None,
                confidence: float = 0.95):
    """Kaplan-Meier median of ``ds[time]`` per grid point (networks without the event are
    right-censored at the budget), with its CI. ``event`` defaults to ``broken`` for
    ``time_to_break`` and ``converged`` for ``time_to_converge``."""
    event = event or {"time_to_break": "broken", "time_to_converge": "converged"}[time]

    def one(point):
        m = stats.median_time(point[time].values, point[event].values, confidence)
        return m.median, m.low, m.high, m.n_events

    attrs = {"median_steps": {"long_name": f"Kaplan-Meier median of {time}", "units": "steps",
                        "description": "inf: fewer than half the networks had the event "
                                       "within the budget"},
             "low": {"long_name": f"lower {100 * confidence:g}% bound of the median",
                     "units": "steps"},
             "high": {"long_name": f"upper {100 * confidence:g}% bound of the median",
                      "units": "steps", "description": "inf: unbounded within the budget"},
             "n_events": {"long_name": f"networks with {event}", "units": "1"}}
    return _per_point(ds, one, ("median_steps", "low", "high", "n_events"), attrs)


def fit_curve(curve, time: str = "time_to_converge", event: str = "converged",
              sigma_range=(1e-8, 1e-2), min_finished: float = 0.9, n_boot: int = 1000):
    """The log-law fit (:func:`jaxsym.analysis.stats.fit_log_law`) of ONE curve (dims ``sigma_b`` and
    ``seed``) over the sigma_b in ``sigma_range`` where >= ``min_finished`` of the networks
    had the event (censored runs would bias the medians); None with fewer than 3 such values.
    The report's fits and :func:`log_law` both use it."""
    keep = [s for s in curve.sigma_b.values if sigma_range[0] <= s <= sigma_range[1]
            and float(curve[event].sel(sigma_b=s).mean()) >= min_finished]
    if len(keep) < 3:
        return None
    sel = curve.sel(sigma_b=keep)
    sigma = np.broadcast_to(sel.sigma_b.values[:, None], sel[event].shape)
    return stats.fit_log_law(sigma.ravel(), sel[time].values.ravel(), sel[event].values.ravel(),
                             n_boot=n_boot)


def log_law(ds, time: str = "time_to_converge", event: str | None = None,
            sigma_range=(1e-8, 1e-2), min_finished: float = 0.9, n_boot: int = 1000):
    """``T = a + b log10(1/sigma_b)`` fitted to the per-sigma_b median times (sigma_b in
    ``sigma_range`` with >= ``min_finished`` of the networks finished), per combination of the
    other grid dims, with the stratified-bootstrap 95% CI of ``b``
    (:func:`jaxsym.analysis.stats.fit_log_law`). Needs a ``sigma_b`` grid dim."""
    event = event or {"time_to_break": "broken", "time_to_converge": "converged"}[time]
    if "sigma_b" not in grid_dims(ds):
        raise ValueError("log_law needs a sigma_b grid axis")

    def one(curve):
        fit = fit_curve(curve, time, event, sigma_range, min_finished, n_boot)
        return (np.nan,) * 4 + (0,) if fit is None else (fit.a, fit.b, fit.b_low, fit.b_high,
                                                          fit.n_points)

    stacked = ds.transpose("sigma_b", ...)
    rest = [d for d in grid_dims(ds) if d != "sigma_b"]
    attrs = {"a": {"long_name": "intercept of the log-law", "units": "steps"},
             "b": {"long_name": "slope of the log-law", "units": "steps per decade of sigma_b"},
             "b_low": {"long_name": "lower 95% bootstrap bound of b",
                       "units": "steps per decade of sigma_b"},
             "b_high": {"long_name": "upper 95% bootstrap bound of b",
                        "units": "steps per decade of sigma_b"},
             "n_points": {"long_name": "sigma_b values fitted", "units": "1"}}
    # one fit per combination of the other grid dims (one in all without others)
    import xarray as xr

    shape = tuple(ds.sizes[d] for d in rest)
    out = {k: np.empty(shape) for k in attrs}
    for index in itertools.product(*(range(n) for n in shape)):
        for k, v in zip(attrs, one(stacked.isel(dict(zip(rest, index))))):
            out[k][index] = v
    return xr.Dataset({k: (tuple(rest), out[k], attrs[k]) for k in attrs},
                      coords={d: ds[d] for d in rest})


def summary(ds, confidence: float = 0.95):
    """P(broken), P(converged) (Wilson bounds) and the KM median steps to break and to converge
    (with CIs) per grid point, as one Dataset (names prefixed by the statistic)."""
    import xarray as xr

    parts = []
    for prefix, part in (("p_broken", p_event(ds, "broken", confidence)),
                         ("p_converged", p_event(ds, "converged", confidence)),
                         ("steps_to_break", median_time(ds, "time_to_break", None, confidence)),
                         ("steps_to_converge",
                          median_time(ds, "time_to_converge", None, confidence))):
        short = {"n": "n", "median_steps": f"{prefix}_median"}
        parts.append(part.rename({name: short.get(name, f"{prefix}_{name}")
                                  for name in part.data_vars}))
    merged = xr.merge(parts, compat="override")
    merged.attrs = {"budget": int(ds.attrs["steps"]), "name": ds.attrs.get("name", "")}
    return merged


from jaxsym._lazy import submodule_getattr  # noqa: E402

__getattr__ = submodule_getattr(__name__)
