"""Study -> :class:`StudyPlan`: everything decided before anything trains (no JAX).

Contract: :func:`plan` ``(study, chunk_size) -> StudyPlan`` builds every data draw's task ONCE,
splits the grid into static groups, tabulates the numeric knobs and cuts the chunk list, or
raises :class:`jaxsym.study.config.ConfigError` (one line) when a task cannot be built. The
engine executes a plan; the resource checks, the dry run and the theory read it. This module
imports NumPy and the standard library only (``import jaxsym.study.plan`` never imports JAX).

* The grid is the product of the config's grid axes, flattened in C order: grid index g.
  Network (g, s) has flat id ``g * n_seeds + s`` (``n_seeds = study.networks_per_point``);
  with ``task.draws = D``, seed index ``s`` trains on draw ``s // seeds.count``.
* Categorical axes (activation, loss, optimizer, kernel) and the integer ``batch_size`` axis split the
  grid into static groups, compiled once each; the numeric axes and the weight init mode (an index into ``WEIGHT_MODES``) are
  knobs, traced.
* Chunks are cut per group and per data draw (one training set per compiled call), in group
  order, then draw order, then ``chunk_size`` networks at a time; chunk k of the whole study is
  trained by process ``k % process_count``. The cut never changes a network's result.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from jaxsym.study import config, tasks

from jaxsym.core.spec import KNOBS, WEIGHT_MODES, NetworkSpec, checkpoint_steps

__all__ = ["Group", "Chunk", "ChunkList", "StudyPlan", "plan", "grid_points", "knob_table",
           "plan_groups", "group_networks", "build_tasks"]


@dataclass(frozen=True)
class Group:
    """Grid points sharing one static configuration.

    Attributes:
      index: group number (order of first appearance in the flat grid).
      categorical: ``((axis, value), ...)`` of the static grid axes that split the grid.
      spec: the compiled-once :class:`NetworkSpec`.
      grid_indices: ``(n_points,)`` int64 flat grid indices of this group's points, ascending.
    """

    index: int
    categorical: tuple
    spec: NetworkSpec
    grid_indices: np.ndarray = field(hash=False, compare=False)


@dataclass(frozen=True)
class Chunk:
    """One compiled call's networks.

    Attributes:
      index: chunk number in the whole study (process ``index % process_count`` trains it).
      group: the :class:`Group`'s index.
      draw: the data draw every network of the chunk trains on.
      nets: ``(<= chunk_size,)`` int64 flat network ids ``g * n_seeds + s``, ascending.
    """

    index: int
    group: int
    draw: int
    nets: np.ndarray = field(hash=False, compare=False)


@dataclass(frozen=True)
class StudyPlan:
    """A study planned once: its tasks, static groups, knob table and chunk list.

    Attributes:
      study: the validated :class:`jaxsym.study.config.Study`.
      tasks: one :class:`jaxsym.study.tasks.Task` per data draw (task seed ``task.seed + draw``).
      groups: the static :class:`Group` s, in order.
      knobs: ``(n_grid_points, len(KNOBS))`` float64, every numeric knob at every grid point.
      chunks: every :class:`Chunk`, in training order (a :class:`ChunkList`).
      chunk_size: the most networks per chunk.
    """

    study: config.Study
    tasks: tuple
    groups: tuple
    knobs: np.ndarray = field(hash=False, compare=False)
    chunks: Sequence = ()
    chunk_size: int = 256

    @property
    def task(self) -> tasks.Task:
        """The first data draw's task (its shapes are every draw's)."""
        return self.tasks[0]

    @property
    def n_seeds(self) -> int:
        """Networks per grid point (``seeds.count * task.draws``)."""
        return self.study.networks_per_point

    @property
    def n_networks(self) -> int:
        return self.study.n_networks


def _setting(study, point: dict, axis: str):
    """The value of ``axis`` at grid point ``point`` (the scalar setting when not a grid axis)."""
    return point[axis] if axis in point else study.get(f"{config.AXIS_SECTION[axis]}.{axis}")


def grid_points(study) -> list[dict]:
    """Every grid point as ``{axis: value}``, in flat (C) order."""
    axes = study.grid_axes
    return [dict(zip(axes, values)) for values in itertools.product(*(v for _, v in study.grid))]


def knob_table(study) -> np.ndarray:
    """``(n_grid_points, len(KNOBS))`` float64: every numeric knob at every grid point
    (``weight_mode`` as its index in ``WEIGHT_MODES``)."""
    def value(point, knob):
        if knob == "weight_mode":
            return float(WEIGHT_MODES.index(_setting(study, point, knob)))
        return float(_setting(study, point, knob))

    return np.array([[value(p, k) for k in KNOBS] for p in grid_points(study)],
                    dtype=np.float64).reshape(-1, len(KNOBS))


def _spec(study, point: dict, task: tasks.Task) -> NetworkSpec:
    """The static spec of the group whose categorical settings are ``point``."""
    s = study.sections
    loss = _setting(study, point, "loss")
    sizes = ((task.dim,) + (s["model"]["width"],) * (s["model"]["depth"] - 1)
             + (tasks.output_width(task, loss),))
    return NetworkSpec(
        layer_sizes=sizes, activation=_setting(study, point, "activation"), loss=loss,
        optimizer=_setting(study, point, "optimizer"),
        fan_in_scaled=s["init"]["fan_in_scaled"], steps=s["train"]["steps"],
        batch_size=_setting(study, point, "batch_size"), dtype=s["train"]["dtype"],
        checkpoints=checkpoint_steps(s["train"]["steps"], s["record"]["checkpoints"]),
        gradient_steps=min(s["record"]["gradient_steps"], s["train"]["steps"]),
        diversity_threshold=s["thresholds"]["diversity"],
        loss_threshold=s["thresholds"]["loss"],
        classification=task.kind == "classification", validation=task.n_val > 0,
        kernel=_setting(study, point, "kernel"),
        noisy=bool(max(dict(study.grid).get("noise", (s["train"]["noise"],))) > 0),
        decayed=bool(max(dict(study.grid).get("weight_decay",
                                              (s["train"]["weight_decay"],))) > 0),
        dropped=bool(max(dict(study.grid).get("dropout", (s["train"]["dropout"],))) > 0),
        label_noisy=bool(max(dict(study.grid).get("label_noise",
                                                  (s["train"]["label_noise"],))) > 0),
        weight_modes=_weight_modes(study))


def _weight_modes(study) -> tuple[str, ...]:
    """The study's weight init schemes (its whole grid's, so that every group and chunk
    compiles the same init), in :data:`WEIGHT_MODES` order."""
    used = set(dict(study.grid).get("weight_mode", (study.get("init.weight_mode"),)))
    return tuple(mode for mode in WEIGHT_MODES if mode in used)


def plan_groups(study, task: tasks.Task) -> list[Group]:
    """Split the grid into static groups (one compile each): one per combination of the
    static grid axes (:data:`jaxsym.study.config.STATIC_AXES`: the categorical axes other than
    ``weight_mode``, a knob, and ``batch_size``), in order of first appearance."""
    categorical_axes = [a for a in study.grid_axes if a in config.STATIC_AXES]
    members: dict[tuple, list[int]] = {}
    for g, point in enumerate(grid_points(study)):
        members.setdefault(tuple((a, point[a]) for a in categorical_axes), []).append(g)
    return [Group(index, categorical, _spec(study, dict(categorical), task),
                  np.asarray(indices, np.int64))
            for index, (categorical, indices) in enumerate(members.items())]


def group_networks(group: Group, n_seeds: int) -> np.ndarray:
    """Flat ids ``g * n_seeds + s`` of the group's networks, in the engine's order."""
    return (group.grid_indices[:, None] * n_seeds + np.arange(n_seeds)[None, :]).ravel()


def build_tasks(study) -> tuple:
    """Every data draw's task (nothing is written), or :class:`config.ConfigError` naming the
    task and the reason (bad option values, a missing data extra)."""
    built = []
    for draw in range(study.get("task.draws")):
        try:
            built.append(study.make_task(draw))
        except ImportError as error:
            raise config.ConfigError(
                f"config key 'task.name': task {study.get('task.name')!r} needs the data extra "
                f"(python -m pip install -e '.[data]'): {error}") from None
        except (ValueError, TypeError, ArithmeticError) as error:
            options = ", ".join(f"{k} = {v!r}" for k, v in study.task_options.items())
            raise config.ConfigError(f"config key 'task': cannot build task "
                                     f"{study.get('task.name')!r} ({options}): {error}") from None
    return tuple(built)


class ChunkList(Sequence):
    """The chunk list of a plan (see the module docstring), computed on demand: chunk k's
    networks are arithmetic on the group's grid indices, so a study of 10^10 networks plans in
    microseconds and the engine holds one chunk's ids at a time.

    ``len(chunks)``, ``chunks[k]`` (a :class:`Chunk`) and iteration in training order."""

    def __init__(self, groups, count: int, draws: int, chunk_size: int):
        self._groups, self._count, self._draws = tuple(groups), count, draws
        self._chunk_size = chunk_size
        self._per_draw = [len(g.grid_indices) * count for g in self._groups]
        self._draw_chunks = [-(-n // chunk_size) for n in self._per_draw]
        self._starts = np.cumsum([0] + [draws * c for c in self._draw_chunks])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        k = int(k) + (len(self) if k < 0 else 0)
        if not 0 <= k < len(self):
            raise IndexError(f"chunk {k} of {len(self)}")
        g = int(np.searchsorted(self._starts, k, side="right")) - 1
        draw, c = divmod(k - int(self._starts[g]), self._draw_chunks[g])
        # position i in the draw's list: grid point i // count, seed draw * count + i % count
        i = np.arange(c * self._chunk_size, min((c + 1) * self._chunk_size, self._per_draw[g]),
                      dtype=np.int64)
        group = self._groups[g]
        nets = (group.grid_indices[i // self._count] * (self._draws * self._count)
                + draw * self._count + i % self._count)
        return Chunk(k, group.index, draw, nets)


def plan(study, chunk_size: int = 256) -> StudyPlan:
    """Plan ``study`` once (see the module docstring).

    Raises:
      ConfigError: a data draw's task cannot be built (one line naming the task).
      ValueError: ``chunk_size < 1``.
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    built = build_tasks(study)
    groups = tuple(plan_groups(study, built[0]))
    return StudyPlan(study=study, tasks=built, groups=groups, knobs=knob_table(study),
                     chunks=ChunkList(groups, study.get("seeds.count"), study.get("task.draws"),
                                      chunk_size), chunk_size=chunk_size)
