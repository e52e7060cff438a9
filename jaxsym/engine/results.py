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
  diversity_at_break(G, seed, layer) (exact s2/s1 at time_to_break),
  time_to_converge(G, seed), converged(G, seed), diverged(G, seed), final_loss(G, seed),
  test_loss(G, seed), and final_accuracy(G, seed) (training set) and test_accuracy(G, seed) for
  classification tasks.
Attributes: ``config`` (TOML text), ``study`` (resolved JSON), ``steps``, thresholds, provenance.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from jaxsym.engine import store
from jaxsym.core.network import record_shapes

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
               "diversity_at_break": ("layer",),
               "broken": (), "time_to_converge": (), "converged": (), "diverged": (),
               "final_loss": (), "test_loss": (), "final_accuracy": (),
               "test_accuracy": ()}

_DESCRIPTIONS = {
    "loss": "training loss at the record step (full training set)",
    "spread": "relative unit spread of each hidden layer: RMS ||u_j - mean|| / mean ||u_j||, "
              "u_j = (incoming weights, bias, outgoing weights) of unit j",
    "diversity": "direction diversity s2/s1 of each hidden layer's weight matrix",
    "grad_norm": "Frobenius norm of dLoss/dW per layer at each of the first steps",
    "time_to_break": "first step at which every hidden layer's exact diversity s2/s1 exceeds "
                     "the threshold (= steps if never: right-censored); the layer may heal "
                     "later, so later checkpoints of diversity can lie below it",
    "time_to_converge": "first step at which the training loss is <= the loss threshold "
                        "(= steps if never: right-censored)",
    "time_to_break_layer": "first step at which this hidden layer's diversity exceeds the "
                           "threshold (= steps if never: right-censored)",
    "broken_layer": "this hidden layer's diversity exceeded the threshold within the budget",
    "diversity_at_break": "exact s2/s1 (SVD) of each hidden layer's W at time_to_break (NaN if "
                          "never broken): above the threshold for every broken network",
    "broken": "symmetry broken within the step budget", "converged": "converged within budget",
    "diverged": "a non-finite loss or gradient occurred (network frozen)",
    "final_loss": "training loss after the last step", "test_loss": "test loss after training",
    "final_accuracy": "training-set accuracy after training",
    "test_accuracy": "test-set accuracy after training",
}


#: CF-style ``(long_name, units)`` of every variable ("1": dimensionless; steps count updates)
_CF = {
    "loss": ("training loss", "1"), "spread": ("relative unit spread", "1"),
    "diversity": ("direction diversity s2/s1", "1"),
    "grad_norm": ("gradient norm ||dLoss/dW||_F", "1"),
    "time_to_break": ("steps to break the symmetry", "steps"),
    "time_to_converge": ("steps to converge", "steps"),
    "time_to_break_layer": ("steps to break the symmetry, per hidden layer", "steps"),
    "broken_layer": ("symmetry broken, per hidden layer", "1"),
    "diversity_at_break": ("direction diversity s2/s1 at the break", "1"),
    "broken": ("symmetry broken", "1"), "converged": ("converged", "1"),
    "diverged": ("diverged", "1"), "final_loss": ("final training loss", "1"),
    "test_loss": ("final test loss", "1"), "final_accuracy": ("training accuracy", "1"),
    "test_accuracy": ("test accuracy", "1"),
}

#: CF-style attributes of the coordinates (grid axes: :func:`_grid_attrs`)
_COORD_ATTRS = {
    "seed": {"long_name": "network index at a grid point", "units": "1",
             "description": "index s of the network at its grid point (0-based; draw-major: "
                            "s = draw * seeds.count + k), NOT the PRNG seed: the network's key "
                            "is derived from (seeds.root, grid point, s)"},
    "draw": {"long_name": "data draw", "units": "1",
             "description": "the training-set draw the network trained on (task seed = "
                            "task.seed + draw)"},
    "step": {"long_name": "updates done", "units": "steps",
             "description": "record checkpoint: the value after this many optimizer updates "
                            "(0 = at initialisation)"},
    "layer": {"long_name": "hidden layer", "units": "1",
              "description": "hidden layer index, 1-based from the input"},
    "grad_step": {"long_name": "update index", "units": "steps",
                  "description": "the gradient of update t (0-based: 0 = the first update)"},
    "weight_layer": {"long_name": "weight layer", "units": "1",
                     "description": "weight matrix index, 1-based from the input (the last "
                                    "is the output layer)"},
}

_GRID_ATTRS = {
    "sigma_b": ("bias-init standard deviation sigma_b", "1"),
    "weight_value": ("constant hidden weight value", "1"),
    "W_std": ("weight-init standard deviation factor", "1"),
    "learning_rate": ("learning rate", "1"), "eps": ("tied-init noise scale eps", "1"),
    "noise": ("per-step relative parameter noise", "1"),
    "activation": ("hidden activation", ""), "loss": ("loss function", ""),
    "optimizer": ("optimizer", ""), "weight_mode": ("weight init scheme", ""),
}


def _grid_attrs(axis: str) -> dict:
    long_name, units = _GRID_ATTRS.get(axis, (axis, ""))
    attrs = {"long_name": long_name, "description": f"grid axis '{axis}' of the study config"}
    if units:
        attrs["units"] = units
    return attrs


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
    coords = {grid_dim(axis): (grid_dim(axis), list(values), _grid_attrs(axis))
              for axis, values in study.grid}
    plain = dict(seed=np.arange(n_seeds), step=np.asarray(spec.checkpoints),
                 layer=np.arange(1, spec.depth), grad_step=np.arange(spec.gradient_steps),
                 weight_layer=np.arange(1, spec.depth + 1))
    coords.update({name: (name, values, _COORD_ATTRS[name]) for name, values in plain.items()})
    coords["draw"] = ("seed", np.arange(n_seeds) // study.get("seeds.count"),
                      _COORD_ATTRS["draw"])
    variables = {}
    for name, values in arrays.items():
        dims = grid_dims + ("seed",) + RECORD_DIMS[name]
        long_name, units = _CF[name]
        variables[name] = xr.Variable(dims, values.reshape(grid_shape + (n_seeds,) + shapes[name]),
                                      attrs={"long_name": long_name, "units": units,
                                             "description": _DESCRIPTIONS[name]})
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
    """Write ``dataset`` to netCDF-4 at ``path`` atomically (a unique temp file + rename), and
    its SHA-256 to ``PATH.sha256``.

    A failed write (e.g. a full disk, which netCDF reports as ``NetCDF: HDF error``) raises
    OSError naming the file, the reason and the free space left; nothing is replaced."""
    import tempfile

    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp)
    try:
        try:
            dataset.to_netcdf(tmp, engine="netcdf4")
        except (OSError, RuntimeError) as error:
            free = shutil.disk_usage(path.parent).free
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise OSError(f"cannot write '{path}' ({reason}); {free / 2**20:.0f} MiB free on "
                          "its filesystem: free space and re-run the same command (the chunks "
                          "are kept)") from None
        os.chmod(tmp, 0o666 & ~store._umask())
        store.write_digest(path, store.file_digest(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
