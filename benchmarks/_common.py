"""Shared helpers of the benchmark scripts in this directory (not part of the ``jaxsym`` package).

Import this module BEFORE anything imports JAX and call :func:`use_all_cores` first: the sweep
engine gives XLA one CPU device per core, and that choice is read once, when JAX starts.

The benchmark workload W(N, width): N independent MLPs ``2 -> width -> width -> 1`` (depth 3),
tanh, MSE, one shared full batch of 256 samples (teacher_student task, dim 2), plain SGD
(learning rate 0.05), ``steps`` updates in ``lax.scan``. Useful FLOPs of one SGD step of one
network (forward = 2 * batch * weights multiply-adds; forward + backward = 3 x forward)::

    flops_per_network_step = 3 * 2 * 256 * (2 * width + width**2 + width)

Biases, the activation and the engine's own bookkeeping (metrics, divergence checks) are not
counted, so "GFLOP/s" here is a lower bound on the arithmetic actually done.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import tempfile
import sys
import time
from dataclasses import dataclass
from pathlib import Path

#: ``benchmarks/`` and the repository root (scripts run as ``python benchmarks/NAME.py``).
BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DEFAULT_RESULTS = BENCH_DIR / "results"

N_TRAIN = 256
DIM = 2
DEPTH = 3
LEARNING_RATE = 0.05


def cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def use_all_cores() -> None:
    """One XLA CPU device per core, exactly as ``jaxsym run`` does (must run before JAX starts).

    Reuses ``jaxsym.cli.commands.use_all_cores`` (importing ``jaxsym.cli`` does not import JAX);
    falls back to the same logic if that helper is not there.
    """
    if "jax" in sys.modules:
        raise RuntimeError("use_all_cores() must be called before JAX is imported")
    try:
        from jaxsym.cli.commands import use_all_cores as _use_all_cores
    except ImportError:  # pragma: no cover - the package renamed its helper
        _use_all_cores = None
    if _use_all_cores is not None and "jax" not in sys.modules:
        _use_all_cores()
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        flags = f"{flags} --xla_force_host_platform_device_count={cores()}"
        os.environ["XLA_FLAGS"] = flags.strip()


def flops_per_network_step(width: int, n_train: int = N_TRAIN, dim: int = DIM) -> int:
    """Useful FLOPs of one full-batch SGD step of one ``dim -> width -> width -> 1`` MLP."""
    return 3 * 2 * n_train * (dim * width + width * width + width)


def peak_rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident set size in MiB (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(who).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def machine_info() -> dict:
    """Machine, Python and (if imported) JAX facts for the results JSON."""
    info = {"hostname": platform.node(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "python":
            platform.python_version(), "cores": cores(), "cpu_model": _cpu_model(),
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if "jax" not in sys.modules:  # do not start JAX just to describe it
        from importlib import metadata

        try:
            info["jax_version"] = metadata.version("jax")
        except metadata.PackageNotFoundError:  # pragma: no cover
            pass
    else:
        import jax
        import jaxlib

        info.update(jax_version=jax.__version__, jaxlib_version=jaxlib.__version__,
                    backend=jax.default_backend(), device_count=jax.local_device_count(),
                    devices=[str(d) for d in jax.local_devices()])
    try:
        import jaxsym

        info["jaxsym_version"] = jaxsym.__version__
    except ImportError:  # pragma: no cover
        pass
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def study_toml(width: int, seeds: int, steps: int = 500, checkpoints: int = 30,
               gradient_steps: int = 1, n_sigma_b: int = 1, name: str = "bench") -> str:
    """TOML of the benchmark study: W(seeds * n_sigma_b, width) with the engine's records.

    ``n_sigma_b > 1`` adds a traced grid axis ``sigma_b`` (log-spaced, 1e-8 .. 1): more grid
    points, the same static group (one compile).
    """
    grid = (f"\n[grid]\nsigma_b = {{logspace = [-8, 0], num = {n_sigma_b}}}\n"
            if n_sigma_b > 1 else "")
    return f"""name = "{name}"

[task]
name = "teacher_student"
dim = {DIM}
teacher_width = 2
n_train = {N_TRAIN}
n_test = 64

[model]
depth = {DEPTH}
width = {width}
activation = "tanh"

[train]
loss = "mse"
optimizer = "sgd"
learning_rate = {LEARNING_RATE}
steps = {steps}
dtype = "float32"

[init]
weight_mode = "glorot"

[seeds]
count = {seeds}

[record]
checkpoints = {checkpoints}
gradient_steps = {gradient_steps}
{grid}"""


def map_batch(spec, strategy: str) -> int:
    """Networks each device trains together per ``lax.map`` step, as ``run_study`` chooses it
    (``runner.nets_per_map_step`` for "map"; 1 for "vmap")."""
    from jaxsym.engine import runner

    return runner.nets_per_map_step(spec) if strategy == "map" else 1


def first_spec(study):
    """The :class:`jaxsym.core.spec.NetworkSpec` of the study's first static group."""
    from jaxsym.study import plan, tasks

    task = tasks.make_task(study.get("task.name"), seed=study.get("task.seed"),
                           **study.task_options)
    return plan.plan_groups(study, task)[0].spec


@dataclass
class EngineChunk:
    """One chunk of the engine: call ``runner(*args)``.

    Attributes:
      runner: the jitted function ``jaxsym.engine.runner.make_runner`` returns (the engine's own).
      args: ``(grid_idx, seed_idx, knobs, data)``, sharded over the devices.
      spec: the group's static spec.
      batch: networks per ``lax.map`` step ("map") -- 1 for "vmap".
      length: networks in the padded chunk (a multiple of devices x batch).
    """

    runner: object
    args: tuple
    spec: object
    batch: int
    length: int


def engine_chunk(study, n: int, strategy: str, batch: int | None = None) -> EngineChunk:
    """The engine's compiled runner and the arguments of ONE chunk of ``n`` networks.

    Mirrors ``jaxsym.engine.run.run_study``: the group's runner from ``runner.make_runner`` (the
    very function the engine calls) with the engine's map batch (``batch`` overrides it), the first
    ``n`` networks of group 0 in the engine's order, padded to a multiple of devices x batch
    by repeating the last network, ``device_put`` with the runner's sharding.
    """
    import jax

    from jaxsym.engine import runner
    from jaxsym.study import plan, tasks

    task = tasks.make_task(study.get("task.name"), seed=study.get("task.seed"),
                           **study.task_options)
    group = plan.plan_groups(study, task)[0]
    n_seeds = study.get("seeds.count")
    devices = tuple(jax.local_devices())
    nets = plan.group_networks(group, n_seeds)[:n]
    if len(nets) < n:
        raise ValueError(f"study has {len(nets)} networks in its first group, asked for {n}")
    batch = map_batch(group.spec, strategy) if batch is None else batch
    compiled, sharding = runner.make_runner(group.spec, study.get("seeds.root"), strategy,
                                            devices, batch)
    data = runner.task_data(task, group.spec.loss)
    step = len(devices) * batch
    length = -(-n // step) * step
    args = runner.chunk_arguments(nets, length, n_seeds, plan.knob_table(study),
                                  study.get("train.dtype"), sharding)
    return EngineChunk(compiled, (*args, data), group.spec, batch, length)


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live process (Linux ``/proc``), None if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _vm_hwm_mib(pid: int) -> float | None:
    """Peak RSS (``VmHWM``) of a live process's own address space in MiB (Linux), else None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10
    except (OSError, IndexError, ValueError):
        pass
    return None


def run_child(command: list[str], workdir: Path, env: dict | None = None,
              timeout: float | None = None, idle_timeout: float | None = None) -> dict:
    """Run ``command`` (stdout and stderr to files in ``workdir``) and report on it.

    The child is killed when it runs longer than ``timeout`` seconds, or when it uses less than
    half a CPU-second in ``idle_timeout`` seconds (hung: the XLA CPU deadlock parks every thread).
    Peak RSS, two ways: ``peak_rss_mib`` is ``ru_maxrss`` from ``os.wait4`` on its pid (that
    child only; ``getrusage(RUSAGE_CHILDREN)`` would give the maximum over every child reaped so
    far). On Linux it is floored by this parent's RSS at the spawn (exec accounts the address
    space the child starts from), so keep the parent small or use ``vm_hwm_mib``: the child's
    own ``VmHWM`` from ``/proc``, polled every 0.2 s (growth in its last 0.2 s is missed).

    Returns:
      ``exit_status``, ``killed`` (None, "timeout" or "hung"), ``wall_s``, ``cpu_s``,
      ``peak_rss_mib``, ``vm_hwm_mib``, ``parent_rss_mib`` (at the spawn), ``stdout``,
      ``stderr``.
    """
    workdir = Path(workdir)
    stdout, stderr = workdir / "stdout.txt", workdir / "stderr.txt"
    start = time.perf_counter()
    killed, hwm = None, None
    parent_rss = peak_rss_mib()
    with open(stdout, "w") as out, open(stderr, "w") as err:
        child = subprocess.Popen(command, stdout=out, stderr=err, cwd=REPO_ROOT, env=env)
        last_cpu, last_progress = 0.0, start
        while True:  # os.wait4 has no timeout: poll, then reap
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            now = time.perf_counter()
            hwm = max(filter(None, (hwm, _vm_hwm_mib(child.pid))), default=None)
            cpu = _cpu_seconds(child.pid)
            if cpu is not None and cpu - last_cpu >= 0.5:
                last_cpu, last_progress = cpu, now
            if timeout is not None and now - start > timeout:
                killed = "timeout"
            elif idle_timeout is not None and now - last_progress > idle_timeout:
                killed = "hung"
            if killed:
                child.kill()
                _, status, usage = os.wait4(child.pid, 0)
                break
            time.sleep(0.2)
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    rss = usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)
    return {"exit_status": child.returncode, "killed": killed,
            "wall_s": time.perf_counter() - start, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mib": rss, "vm_hwm_mib": hwm, "parent_rss_mib": parent_rss,
            "stdout": stdout.read_text(), "stderr": stderr.read_text()}


def json_child(command: list[str], timeout: float | None = None,
               idle_timeout: float | None = None, prefix: str = "jaxsym-bench-") -> tuple:
    """:func:`run_child` of a worker that prints its result as the last ``{...}`` line of
    stdout, in a fresh temporary directory. Returns ``(result, error, child)``: the parsed
    result and None, or None and why there is none ("timeout", "hung" or the exit status with
    the last line of stderr); ``child`` is :func:`run_child`'s report."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        child = run_child(command, Path(tmp), timeout=timeout, idle_timeout=idle_timeout)
    lines = [line for line in child["stdout"].splitlines() if line.startswith("{")]
    if child["killed"]:
        return None, child["killed"], child
    if child["exit_status"] != 0 or not lines:
        tail = (child["stderr"].strip().splitlines() or ["?"])[-1]
        return None, f"exit status {child['exit_status']}: {tail}", child
    return json.loads(lines[-1]), None, child


def write_results(out: Path, stem: str, payload: dict, markdown: str) -> tuple[Path, Path]:
    """Write ``OUT/STEM.json`` and ``OUT/STEM.md``; return both paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    json_path.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
    md_path.write_text(markdown if markdown.endswith("\n") else markdown + "\n")
    return json_path, md_path


def _jsonable(value):
    try:
        return value.item()  # NumPy / JAX scalars
    except AttributeError:
        return str(value)


def markdown_table(headers: list[str], rows: list[list]) -> str:
    """A GitHub markdown table; ``None`` cells print as an em dash."""
    def cell(v):
        if v is None:
            return "—"
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_markdown(info: dict) -> str:
    """One line describing the machine, for the markdown reports."""
    devices = (f" ({info['backend']}, {info['device_count']} devices)"
               if "device_count" in info else "")
    return (f"Machine: {info.get('cpu_model')}, {info.get('cores')} cores; Python "
            f"{info.get('python')}, JAX {info.get('jax_version', '?')}{devices}; "
            f"{info.get('time')}.")
