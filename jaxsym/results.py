"""Merge chunk records into the labelled results ``xarray.Dataset`` (schema of DESIGN.md).

Dims: one per grid axis (named as in the config, except ``loss``: ``loss_function``;
coordinates = its values), ``seed`` (with the
coordinate ``draw(seed)``: the data draw, task seed ``task.seed + draw``, that network trained
on; statistics over ``seed`` pool the draws), ``step``
(record checkpoints: number of updates done), ``layer`` (hidden layers, 1-based),
``grad_step`` (the first steps, 0-based) and ``weight_layer`` (every layer, 1-based).

Variables (``G`` = grid dims):
  loss(G, seed, step), spread(G, seed, step, layer), diversity(G, seed, step, layer),
  grad_norm(G, seed, grad_step, weight_layer), time_to_break(G, seed), broken(G, seed),
  time_to_break_layer(G, seed, layer), broken_layer(G, seed, layer) (each hidden layer alone),
  time_to_converge(G, seed), converged(G, seed), diverged(G, seed), final_loss(G, seed),
  test_loss(G, seed), and final_accuracy(G, seed) (training set) and test_accuracy(G, seed) for
  classification tasks.
Attributes: ``config`` (TOML text), ``study`` (resolved JSON), ``steps``, thresholds, provenance.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from jaxsym import store
from jaxsym.network import record_shapes

__all__ = ["merge", "write", "RECORD_DIMS", "grid_dim"]

#: grid axes whose name is taken by a record variable get another dimension name
_GRID_DIM = {"loss": "loss_function"}


def grid_dim(axis: str) -> str:
    """The Dataset dimension of grid axis ``axis`` (its own name, except ``loss``, a record
    variable: ``loss_function``)."""
    return _GRID_DIM.get(axis, axis)

#: per-network dims of every record
RECORD_DIMS = {"loss": ("step",), "spread": ("step", "layer"), "diversity": ("step", "layer"),
               "grad_norm": ("grad_step", "weight_layer"), "time_to_break": (),
               "time_to_break_layer": ("layer",), "broken_layer": ("layer",),
               "broken": (), "time_to_converge": (), "converged": (), "diverged": (),
               "final_loss": (), "test_loss": (), "final_accuracy": (),
               "test_accuracy": ()}

_DESCRIPTIONS = {
    "loss": "training loss at the record step (full training set)",
    "spread": "relative unit spread of each hidden layer: RMS ||u_j - mean|| / mean ||u_j||, "
              "u_j = (incoming weights, bias, outgoing weights) of unit j",
    "diversity": "direction diversity s2/s1 of each hidden layer's weight matrix",
    "grad_norm": "Frobenius norm of dLoss/dW per layer at each of the first steps",
    "time_to_break": "first step at which every hidden layer's diversity exceeds the threshold "
                     "(= steps if never: right-censored)",
    "time_to_converge": "first step at which the training loss is <= the loss threshold "
                        "(= steps if never: right-censored)",
    "time_to_break_layer": "first step at which this hidden layer's diversity exceeds the "
                           "threshold (= steps if never: right-censored)",
    "broken_layer": "this hidden layer's diversity exceeded the threshold within the budget",
    "broken": "symmetry broken within the step budget", "converged": "converged within budget",
    "diverged": "a non-finite loss or gradient occurred (network frozen)",
    "final_loss": "training loss after the last step", "test_loss": "test loss after training",
    "final_accuracy": "training-set accuracy after training",
    "test_accuracy": "test-set accuracy after training",
}


def merge(study, groups, task, chunks, provenance: dict):
    """Assemble every network's records into one Dataset (raises if any network is missing)."""
    import xarray as xr

    n_seeds = study.networks_per_point
    n_grid = study.n_grid_points
    spec = groups[0].spec
    shapes = record_shapes(spec)
    arrays, filled = {}, np.zeros(n_grid * n_seeds, bool)
    for chunk in chunks:
        nets = chunk["net"]
        for name, shape in shapes.items():
            if name not in arrays:
                arrays[name] = np.zeros((n_grid * n_seeds,) + shape, chunk[name].dtype)
            arrays[name][nets] = chunk[name]
        filled[nets] = True
    if not filled.all():
        raise RuntimeError(f"{int((~filled).sum())} networks have no results yet")
    grid_dims, grid_shape = tuple(grid_dim(a) for a in study.grid_axes), study.grid_shape
    coords = {grid_dim(axis): list(values) for axis, values in study.grid}
    coords.update(seed=np.arange(n_seeds), draw=("seed", np.arange(n_seeds)
                                                 // study.get("seeds.count")),
                  step=np.asarray(spec.checkpoints),
                  layer=np.arange(1, spec.depth), grad_step=np.arange(spec.gradient_steps),
                  weight_layer=np.arange(1, spec.depth + 1))
    variables = {}
    for name, values in arrays.items():
        dims = grid_dims + ("seed",) + RECORD_DIMS[name]
        variables[name] = xr.Variable(dims, values.reshape(grid_shape + (n_seeds,) + shapes[name]),
                                      attrs={"description": _DESCRIPTIONS[name]})
    attrs = {"config": study.text, "study": store.study_identity(study), "name": study.name,
             "preset": study.preset, "overrides": json.dumps(dict(study.overrides)),
             "task": task.name, "task_kind": task.kind, "draws": study.get("task.draws"),
             "steps": spec.steps,
             "diversity_threshold": spec.diversity_threshold,
             "loss_threshold": spec.loss_threshold, "dtype": spec.dtype,
             "layer_sizes": list(spec.layer_sizes)}
    attrs.update(provenance)
    return xr.Dataset(variables, coords=coords, attrs=attrs)


def write(dataset, path: Path) -> None:
    """Write ``dataset`` to netCDF-4 at ``path`` atomically (temp file + rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        dataset.to_netcdf(tmp, engine="netcdf4")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
