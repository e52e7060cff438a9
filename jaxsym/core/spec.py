"""The names and static description of ONE network (JAX-free: imports only NumPy and stdlib).

Contract: this module is THE single definition of the study's vocabulary — the traced knobs
(:data:`KNOBS`), the weight init schemes (:data:`WEIGHT_MODES`), the losses (:data:`LOSSES`),
the optimizers (:data:`OPTIMIZERS`) and the training dtypes (:data:`DTYPES`) — and of the
static, hashable :class:`NetworkSpec` (one compile per spec). The config validator
(:mod:`jaxsym.study.config`), the NumPy oracle (:mod:`jaxsym.theory.backprop`) and the JAX
registries (:mod:`jaxsym.core.nn`, :mod:`jaxsym.core.train`) all read these names; importing
this module never imports JAX.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["KNOBS", "OPTIONAL_KNOBS", "WEIGHT_MODES", "LOSSES", "OPTIMIZERS", "DTYPES", "KERNELS",
           "NetworkSpec",            "Architecture", "checkpoint_steps"]

#: The numeric, traced settings of one network (weight_mode as an index into WEIGHT_MODES).
KNOBS = ("sigma_b", "weight_value", "W_std", "learning_rate", "eps", "noise", "weight_mode",
         "weight_decay", "groups", "dropout", "label_noise")
#: knobs that a caller may leave out (each is off at this value, and compiled in only when a
#: study turns it on: ``NetworkSpec.decayed``, ``NetworkSpec.dropped``,
#: ``NetworkSpec.label_noisy``)
OPTIONAL_KNOBS = {"weight_decay": 0.0, "groups": 1.0, "dropout": 0.0, "label_noise": 0.0}
#: Weight init schemes (hidden and output layers); biases are N(0, sigma_b^2), except in
#: torch_default (PyTorch's nn.Linear default: W and b uniform on +-1/sqrt(fan_in)). The last
#: five are the alternatives to random W: orthogonal (Saxe et al.), constant hidden W with a
#: random (Glorot) output layer, constant hidden W with alternating-sign output weights (two
#: unit groups), and deterministic distinct Hadamard rows (ZerO-style); grouped: Glorot
#: weights shared by ``groups`` groups of identical hidden units (1: all identical; the
#: width: Glorot itself); see jaxsym.core.init.
WEIGHT_MODES = ("constant", "zero", "glorot", "normal", "tied", "torch_default", "orthogonal",
                "random_output", "signed_output", "hadamard", "grouped")
#: Training losses: mse (targets (batch, n_out)), bce (0/1 labels (batch, n_out)),
#: softmax_ce (integer labels (batch,)); see :mod:`jaxsym.core.nn`.
LOSSES = ("mse", "bce", "softmax_ce")
#: Optimizer kinds: sgd, heavy-ball momentum 0.9, Adam; see :mod:`jaxsym.core.train`.
OPTIMIZERS = ("sgd", "momentum", "adam")
#: Training dtypes (records of a bfloat16 run are float32: see :mod:`jaxsym.core.records`).
DTYPES = ("float32", "float64", "bfloat16")
#: How a layer's products are computed (:mod:`jaxsym.core.dense`): "exact" (the default: padded
#: training layout and :func:`jaxsym.core.dense.dense`, identical units bitwise identical on
#: every CPU) or "plain", the UNSAFE textbook ``a @ W.T + b`` in the natural layout with JAX's
#: own transpose rules, whose remainder kernels may round one unit differently from its twins.
#: "plain" exists only to measure that asymmetry as a noise source (the hardware_noise
#: experiment); its results depend on the machine's kernels, so they are not reproducible
#: across CPUs, kernel families or strategies.
KERNELS = ("exact", "plain")


@dataclass(frozen=True)
class NetworkSpec:
    """Static description of one network's training (hashable: one compile per spec).

    Attributes:
      layer_sizes: ``(n_in, n_1, ..., n_out)``; ``depth = len(layer_sizes) - 1`` weight layers.
      activation: hidden activation name (:mod:`jaxsym.core.activations`).
      loss, optimizer, dtype: one of :data:`LOSSES`, :data:`OPTIMIZERS`, :data:`DTYPES`.
      fan_in_scaled: constant weights are ``weight_value / sqrt(n_in)``.
      steps: number of updates.
      batch_size: rows per minibatch; 0 = full batch.
      checkpoints: record steps in ``[0, steps]`` (:func:`checkpoint_steps`).
      gradient_steps: the first updates whose gradient norms are recorded.
      diversity_threshold, loss_threshold: the break and convergence thresholds.
      classification: the task has integer labels (accuracy records).
      noisy: the per-step parameter noise is compiled in (its size is the ``noise`` knob).
      validation: the task has a validation split (``x_val``, ``y_val``: validation records).
      decayed: L2 weight decay is compiled in (its rate is the ``weight_decay`` knob): the
        optimizer sees ``grad + weight_decay * p`` for every parameter (all weights and biases),
        the gradient of ``L + (weight_decay / 2) ||theta||^2`` (:func:`jaxsym.core.train.
        make_optimizer`); the recorded losses stay the data loss L.
      dropped: dropout on the hidden units is compiled in (its rate is the ``dropout`` knob):
        during training every hidden activation is kept with probability ``1 - dropout`` and
        scaled by ``1 / (1 - dropout)`` (inverted dropout, one independent mask entry per
        example and unit per step); every record and evaluation uses the network without
        dropout.
      kernel: one of :data:`KERNELS`; "plain" is the unsafe textbook arithmetic (see there).
      label_noisy: label noise is compiled in (its size is the ``label_noise`` knob): the
        targets of every step's (mini)batch get fresh ``label_noise * N(0, 1)`` added (mse
        only; label-noise SGD, Chen et al. 2023); records use the clean targets.
      weight_modes: the init schemes compiled in (a subset of :data:`WEIGHT_MODES`, in its
        order): the ``weight_mode`` knob is still traced, but only these schemes are computed
        (the study's modes; every mode by default). The knob must index one of them.
    """

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
    validation: bool = False  # the data has a validation split (val_* records)
    decayed: bool = False  # L2 weight decay is compiled in (its rate is the knob)
    dropped: bool = False  # hidden-unit dropout is compiled in (its rate is the knob)
    label_noisy: bool = False  # per-step label noise is compiled in (its size is the knob)
    kernel: str = "exact"  # "plain": the unsafe textbook products (KERNELS)
    weight_modes: tuple[str, ...] = WEIGHT_MODES  # the init schemes compiled in

    @property
    def depth(self) -> int:
        """Number of weight layers (hidden layers + the output layer)."""
        return len(self.layer_sizes) - 1


@dataclass(frozen=True)
class Architecture:
    """What :func:`jaxsym.core.init.init_params` needs of a spec (a :class:`NetworkSpec` also
    has these)."""

    layer_sizes: tuple[int, ...]
    fan_in_scaled: bool
    dtype: str
    weight_modes: tuple[str, ...] = WEIGHT_MODES


def checkpoint_steps(steps: int, count: int) -> tuple[int, ...]:
    """About ``count`` log-spaced record steps in ``[0, steps]``, always including 0 and steps.

    ``unique(round(logspace(0, log10(steps), max(count - 1, 1))))`` plus 0 and ``steps``.

    Raises:
      ValueError: ``steps < 1`` or ``count < 1``.
    """
    if steps < 1 or count < 1:
        raise ValueError("steps and count must be >= 1")
    grid = np.unique(np.round(np.logspace(0.0, np.log10(steps), max(count - 1, 1))).astype(int))
    return tuple(int(s) for s in np.unique(np.concatenate([[0], grid, [steps]])))
