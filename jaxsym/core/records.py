"""THE record schema of one network, declared once (JAX-free: imports only NumPy and stdlib).

Contract: :data:`RECORDS` is the one table of what :func:`jaxsym.core.network.run_network`
returns. Each :class:`Record` gives the record's per-network dims (named as in results.nc),
its dtype kind, its CF-style ``long_name`` / ``units``, a description, whether it exists only
for classification tasks, and its initial value in the training scan's state. Everything else
is derived from it: the shapes (:func:`record_shapes`), the dtypes (:func:`record_dtype`), the
scan state's initial values (:func:`initial_values`, used by :mod:`jaxsym.core.observers`), and
the results.nc variables' dims and attributes (:mod:`jaxsym.engine.results`). The coordinates'
and the grid axes' attributes (:data:`COORD_ATTRS`, :func:`grid_attrs`, :func:`grid_dim`) live
here too, so the report layer reads the schema without JAX.

Dims of one network: ``step`` (record checkpoints, ``len(spec.checkpoints)``), ``layer``
(hidden layers, ``depth - 1``), ``grad_step`` (``spec.gradient_steps``), ``weight_layer``
(``depth``); the engine adds the grid dims and ``seed`` in front (:data:`NETWORK_DIMS`).

Dtype kinds: ``"float"`` is the run's dtype, except float32 for a bfloat16 run (LAPACK has no
bfloat16 SVD, netCDF no bfloat16 type: :func:`float_dtype`); ``"int32"``; ``"bool"``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Record", "RECORDS", "NETWORK_DIMS", "COORD_ATTRS", "GRID_ATTRS", "grid_dim",
           "grid_attrs", "float_dtype", "record_dtype", "dim_sizes", "dim_coords",
           "records_of", "record_shapes", "initial_values", "variable_attrs", "schema_markdown"]

#: The per-network dims of a results Dataset (everything else is a grid dim).
NETWORK_DIMS = ("seed", "step", "layer", "grad_step", "weight_layer")


class Record(NamedTuple):
    """One record of one network.

    Attributes:
      name: the record's (and results.nc variable's) name.
      dims: per-network dims, e.g. ``("step", "layer")``; ``()`` for a scalar.
      kind: ``"float"`` (:func:`float_dtype`), ``"int32"`` or ``"bool"``.
      long_name, units: CF-style attributes (``"1"``: dimensionless; steps count updates).
      description: what the value means.
      classification_only: recorded only for classification tasks.
      validation_only: recorded only for tasks with a validation split (``task.validation``).
      initial: the value it starts from in the training scan's state (``"zero"`` (False for
        bool), ``"steps"`` (right-censored time) or ``"nan"``), or None for a record computed
        after the scan.
    """

    name: str
    dims: tuple[str, ...]
    kind: str
    long_name: str
    units: str
    description: str
    classification_only: bool = False
    initial: str | None = "zero"
    validation_only: bool = False


_SPREAD = ("relative unit spread of each hidden layer: RMS ||u_j - mean|| / mean ||u_j||, "
           "u_j = (incoming weights, bias, outgoing weights) of unit j")

#: THE record table, in the order of the results.nc variables.
RECORDS: tuple[Record, ...] = (
    Record("loss", ("step",), "float", "training loss", "1",
           "training loss at the record step (full training set)"),
    Record("spread", ("step", "layer"), "float", "relative unit spread", "1", _SPREAD),
    Record("diversity", ("step", "layer"), "float", "direction diversity s2/s1", "1",
           "direction diversity s2/s1 of each hidden layer's weight matrix"),
    Record("functional_diversity", ("step", "layer"), "float",
           "functional diversity s2/s1 of the centred hidden activations", "1",
           "s2/s1 of each hidden layer's centred activation matrix g(A W^T + b) over the probe "
           "inputs (the first min(n_train, 512) training inputs): 0 when every unit computes "
           "the same function up to a constant, > 0 for units that compute different functions "
           "(jaxsym.core.metrics.functional_scores)"),
    Record("effective_rank", ("step", "layer"), "float",
           "effective rank of the centred hidden activations", "1",
           "exp(entropy of s_i / sum s) of the same matrix (Roy & Vetterli 2007): 1 for one "
           "function up to scale, up to the width for independent ones; 0 if all constant"),
    Record("val_loss", ("step",), "float", "validation loss", "1",
           "loss on the validation split (task.validation rows held out of the training set) "
           "at the record step", validation_only=True),
    Record("val_accuracy", ("step",), "float", "validation accuracy", "1",
           "accuracy on the validation split at the record step", classification_only=True,
           validation_only=True),
    Record("test_loss_curve", ("step",), "float", "test loss at the record step", "1",
           "test-set loss at the record step (the last one: after training)"),
    Record("test_accuracy_curve", ("step",), "float", "test accuracy at the record step", "1",
           "test-set accuracy at the record step (the last one: after training)",
           classification_only=True),
    Record("grad_norm", ("grad_step", "weight_layer"), "float", "gradient norm ||dLoss/dW||_F",
           "1", "Frobenius norm of dLoss/dW per layer at each of the first steps"),
    Record("time_to_break", (), "int32", "steps to break the symmetry", "steps",
           "first step at which every hidden layer's exact diversity s2/s1 exceeds the "
           "threshold (= steps if never: right-censored); the layer may heal later, so later "
           "checkpoints of diversity can lie below it", initial="steps"),
    Record("time_to_break_layer", ("layer",), "int32",
           "steps to break the symmetry, per hidden layer", "steps",
           "first step at which this hidden layer's diversity exceeds the threshold (= steps "
           "if never: right-censored)", initial="steps"),
    Record("broken_layer", ("layer",), "bool", "symmetry broken, per hidden layer", "1",
           "this hidden layer's diversity exceeded the threshold within the budget"),
    Record("diversity_at_break", ("layer",), "float", "direction diversity s2/s1 at the break",
           "1", "exact s2/s1 (SVD) of each hidden layer's W at time_to_break (NaN if never "
           "broken): above the threshold for every broken network", initial="nan"),
    Record("broken", (), "bool", "symmetry broken", "1",
           "symmetry broken within the step budget"),
    Record("functionally_broken", (), "bool", "functionally broken", "1",
           "after the last step every hidden layer's functional diversity exceeds the "
           "diversity threshold: its units compute different functions of the inputs",
           initial=None),
    Record("time_to_converge", (), "int32", "steps to converge", "steps",
           "first step at which the training loss is <= the loss threshold (= steps if never: "
           "right-censored)", initial="steps"),
    Record("converged", (), "bool", "converged", "1", "converged within budget"),
    Record("diverged", (), "bool", "diverged", "1",
           "a non-finite loss or gradient occurred (network frozen)"),
    Record("final_loss", (), "float", "final training loss", "1",
           "training loss after the last step", initial=None),
    Record("test_loss", (), "float", "final test loss", "1", "test loss after training",
           initial=None),
    Record("final_accuracy", (), "float", "training accuracy", "1",
           "training-set accuracy after training", classification_only=True, initial=None),
    Record("test_accuracy", (), "float", "test accuracy", "1",
           "test-set accuracy after training", classification_only=True, initial=None),
)

#: CF-style attributes of the coordinates (grid axes: :func:`grid_attrs`)
COORD_ATTRS = {
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

#: ``(long_name, units)`` of the known grid axes (``units`` "" for a categorical axis)
GRID_ATTRS = {
    "sigma_b": ("bias-init standard deviation sigma_b", "1"),
    "weight_value": ("constant hidden weight value", "1"),
    "W_std": ("weight-init standard deviation factor", "1"),
    "learning_rate": ("learning rate", "1"), "eps": ("tied-init noise scale eps", "1"),
    "noise": ("per-step relative parameter noise", "1"),
    "weight_decay": ("L2 weight decay rate lambda (coupled: grad + lambda p)", "1"),
    "groups": ("number of groups of identical hidden units (grouped init)", "1"),
    "dropout": ("training-time dropout rate of the hidden units", "1"),
    "label_noise": ("per-step label noise (targets + label_noise N(0, 1))", "1"),
    "activation": ("hidden activation", ""), "loss": ("loss function", ""),
    "optimizer": ("optimizer", ""), "weight_mode": ("weight init scheme", ""),
    "batch_size": ("minibatch size (0 = full batch)", "examples"),
    "kernel": ("layer product arithmetic (exact, or the unsafe plain textbook product)", ""),
}

#: grid axes whose name is taken by a record variable get another dimension name
_GRID_DIM = {"loss": "loss_function"}


def grid_dim(axis: str) -> str:
    """The Dataset dimension of grid axis ``axis`` (its own name, except ``loss``, a record
    variable: ``loss_function``)."""
    return _GRID_DIM.get(axis, axis)


def grid_attrs(axis: str) -> dict:
    """The attributes of grid axis ``axis``'s coordinate: ``long_name``, ``description`` and,
    for a numeric axis, ``units``."""
    long_name, units = GRID_ATTRS.get(axis, (axis, ""))
    attrs = {"long_name": long_name, "description": f"grid axis '{axis}' of the study config"}
    if units:
        attrs["units"] = units
    return attrs


def float_dtype(spec) -> str:
    """The dtype of the float records of a run in ``spec.dtype``: float32 for bfloat16, else
    ``spec.dtype``."""
    return "float32" if spec.dtype == "bfloat16" else spec.dtype


def record_dtype(record: Record, spec) -> str:
    """The NumPy dtype name of ``record`` in a run of ``spec``."""
    return float_dtype(spec) if record.kind == "float" else record.kind


def dim_sizes(spec) -> dict[str, int]:
    """Length of each per-network dim (``seed`` excepted) for ``spec``."""
    return {"step": len(spec.checkpoints), "layer": max(spec.depth - 1, 0),
            "grad_step": spec.gradient_steps, "weight_layer": spec.depth}


def dim_coords(spec) -> dict[str, np.ndarray]:
    """Coordinate values of each per-network dim (``seed`` excepted): the checkpoint steps,
    hidden layers ``1..depth-1``, update indices ``0..gradient_steps-1``, weight layers
    ``1..depth``."""
    return {"step": np.asarray(spec.checkpoints), "layer": np.arange(1, spec.depth),
            "grad_step": np.arange(spec.gradient_steps),
            "weight_layer": np.arange(1, spec.depth + 1)}


def records_of(spec) -> tuple[Record, ...]:
    """The records a run of ``spec`` returns (the accuracies for classification only, the
    validation records with a validation split only)."""
    return tuple(r for r in RECORDS if (spec.classification or not r.classification_only)
                 and (spec.validation or not r.validation_only))


def record_shapes(spec) -> dict[str, tuple[int, ...]]:
    """Shape of every record of one network (the sweep adds grid and seed axes in front)."""
    sizes = dim_sizes(spec)
    return {r.name: tuple(sizes[d] for d in r.dims) for r in records_of(spec)}


def initial_values(spec) -> dict[str, np.ndarray]:
    """The training scan's initial value of every record carried through it (``initial`` not
    None), as NumPy arrays of the record's shape and dtype: 0 / False, ``spec.steps``
    (right-censored) or NaN."""
    shapes = record_shapes(spec)
    fills = {"zero": 0, "steps": spec.steps, "nan": np.nan}
    return {r.name: np.full(shapes[r.name], fills[r.initial], record_dtype(r, spec))
            for r in records_of(spec) if r.initial is not None}


def variable_attrs(record: Record) -> dict[str, str]:
    """The results.nc attributes of ``record``: ``long_name``, ``units``, ``description``."""
    return {"long_name": record.long_name, "units": record.units,
            "description": record.description}


def schema_markdown() -> str:
    """The results.nc schema as a markdown table (variables from :data:`RECORDS`, then the
    coordinates of :data:`COORD_ATTRS`): what docs/ARCHITECTURE.md shows, generated here
    (``python -m jaxsym.core.records``)."""
    kinds = {"float": "run dtype (float32 for bfloat16)", "int32": "int32", "bool": "bool"}

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| variable | dims (after the grid dims) | dtype | units | meaning |",
             "|---|---|---|---|---|"]
    for r in RECORDS:
        dims = ", ".join(("seed",) + r.dims)
        extra = "".join(note for flag, note in (
            (r.classification_only, " (classification tasks only)"),
            (r.validation_only, " (with a validation split only)")) if flag)
        lines.append(f"| `{r.name}` | {dims} | {kinds[r.kind]} | {r.units} | "
                     f"{cell(r.description)}{extra} |")
    lines += ["", "| coordinate | long name | units | meaning |", "|---|---|---|---|"]
    for name, attrs in COORD_ATTRS.items():
        lines.append(f"| `{name}` | {attrs['long_name']} | {attrs['units']} | "
                     f"{cell(attrs['description'])} |")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - documentation generator
    print(schema_markdown())
