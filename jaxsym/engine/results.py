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
  classification tasks. The schema (dims, dtypes, attributes) is the one record table,
  :data:`jaxsym.core.records.RECORDS`; coordinate attributes come from there too.
Attributes: ``config`` (TOML text), ``study`` (resolved JSON), ``steps``, thresholds, provenance.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from jaxsym.core import records
from jaxsym.engine import store

__all__ = ["merge", "write"]


def merge(study, groups, task, chunks, provenance: dict):
    """Assemble every network's records into one Dataset (raises if any network is missing)."""
    import xarray as xr

    n_seeds = study.networks_per_point
    n_grid = study.n_grid_points
    spec = groups[0].spec
    shapes = records.record_shapes(spec)
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
    grid_dims = tuple(records.grid_dim(a) for a in study.grid_axes)
    grid_shape = study.grid_shape
    coords = {records.grid_dim(axis): (records.grid_dim(axis), list(values),
                                       records.grid_attrs(axis)) for axis, values in study.grid}
    plain = {"seed": np.arange(n_seeds), **records.dim_coords(spec)}
    coords.update({name: (name, values, records.COORD_ATTRS[name])
                   for name, values in plain.items()})
    coords["draw"] = ("seed", np.arange(n_seeds) // study.get("seeds.count"),
                      records.COORD_ATTRS["draw"])
    variables = {}
    for record in records.records_of(spec):
        values = arrays[record.name].reshape(grid_shape + (n_seeds,) + shapes[record.name])
        variables[record.name] = xr.Variable(grid_dims + ("seed",) + record.dims, values,
                                             attrs=records.variable_attrs(record))
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
            raise store.RunWriteError(f"cannot write '{path}' ({reason}); {free / 2**20:.0f} MiB "
                                      "free on its filesystem: free space and re-run the same "
                                      "command (the chunks are kept)", path, free) from None
        os.chmod(tmp, 0o666 & ~store._umask())
        store.write_digest(path, store.file_digest(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
