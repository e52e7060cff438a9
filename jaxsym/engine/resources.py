"""What a planned study will cost, before anything runs: memory, arithmetic, rough time.

Contract: :func:`resource_estimate` and :func:`check_resources` read a
:class:`jaxsym.study.plan.StudyPlan` only (no JAX, no training, nothing written); the command
line and :func:`jaxsym.api.run` refuse a study that cannot fit in this machine's memory with
:func:`check_resources`'s one line.
"""

from __future__ import annotations

import os

import numpy as np

from jaxsym.core.records import record_shapes

__all__ = ["resource_estimate", "check_resources", "SECONDS_PER_NET_STEP", "FLOP_PER_SECOND",
           "SECONDS_PER_GROUP"]

#: rough cost model of :func:`resource_estimate`'s ``seconds`` on a 2-core CPU: 26 us per
#: network-step of small networks, the arithmetic at 44 GFLOP/s, and 3 s per static group
#: (its compile and first records). Fitted on a 2-core AMD EPYC (AVX-512) to the study's own
#: times of the first 40 experiments of the full preset (150 min measured, 136 min by this
#: model; the earlier model without the group term said 100 min) and the quick preset (572 s
#: measured, ~13 min by this model): within a factor of ~1.5 per study, a guard against typos
#: in a grid and a planning figure, not a benchmark
SECONDS_PER_NET_STEP, FLOP_PER_SECOND, SECONDS_PER_GROUP = 2.6e-5, 4.4e10, 3.0


def resource_estimate(plan, concurrent: int = 16) -> dict:
    """Rough cost of a planned study: ``networks``; ``record_bytes``, the merged records
    (float64, every network, twice for the merge); ``train_bytes``, the parameters (x6:
    gradients, optimizer state, temporaries) and activations (x4: forward, backward) of
    ``concurrent`` networks training at once (devices x networks per step); ``flops`` (6 x
    parameters x batch per network-step: forward and backward) and ``seconds``
    (:data:`SECONDS_PER_NET_STEP` per network-step + ``flops`` / :data:`FLOP_PER_SECOND` +
    :data:`SECONDS_PER_GROUP` per static group)."""
    study = plan.study
    itemsize = 2 if study.get("train.dtype") == "bfloat16" else np.dtype(
        study.get("train.dtype")).itemsize
    per_net_records, per_net_train, per_net_flops = 0, 0, 0
    for group in plan.groups:
        batch = group.spec.batch_size or plan.task.x_train.shape[0]
        sizes = group.spec.layer_sizes
        params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
        per_net_train = max(per_net_train, (6 * params + 4 * batch * sum(sizes)) * itemsize)
        per_net_flops = max(per_net_flops, 6 * params * batch)
        per_net_records = max(per_net_records, sum(
            int(np.prod(shape)) for shape in record_shapes(group.spec).values()))
    networks = study.n_networks
    net_steps = networks * study.get("train.steps")
    flops = float(net_steps) * per_net_flops
    return {"networks": networks, "record_bytes": 2 * 8 * networks * per_net_records,
            "train_bytes": min(concurrent, networks) * per_net_train, "flops": flops,
            "seconds": net_steps * SECONDS_PER_NET_STEP + flops / FLOP_PER_SECOND
            + len(plan.groups) * SECONDS_PER_GROUP}


def check_resources(plan) -> str | None:
    """A one-line refusal if :func:`resource_estimate` exceeds this machine's memory, else
    None."""
    estimate = resource_estimate(plan)
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None
    need = estimate["record_bytes"] + estimate["train_bytes"]
    if need <= total:
        return None
    return (f"study '{plan.study.name}' needs about {need / 2**30:.3g} GiB of memory "
            f"({estimate['networks']} networks: records {estimate['record_bytes'] / 2**30:.3g} "
            f"GiB, training {estimate['train_bytes'] / 2**30:.3g} GiB) and this machine has "
            f"{total / 2**30:.3g} GiB: reduce seeds.count, the grid, model.width or "
            "task.n_train")
