"""Provenance of a run: what decides its rounding (machine, versions) and which code ran.

Contract: every function returns plain strings / numbers for results.nc's attributes and never
raises for a missing tool (no git, no /proc): it answers "unknown" instead.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

__all__ = ["machine_provenance", "git_sha", "git_dirty", "code_provenance"]


def machine_provenance() -> dict:
    """What decides the rounding of a run: CPU model and vector ISA, device kind, XLA_FLAGS and
    package versions (recorded in results.nc and the report)."""
    import jax
    import jaxlib
    import numpy as np
    import optax
    import scipy
    import xarray

    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model in ("unknown", "x86_64", ""):
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    isa = next((name for name, flag in (("AVX512", "avx512f"), ("AVX2", "avx2"),
                                        ("AVX", "avx"), ("SSE4_2", "sse4_2")) if flag in flags),
               platform.machine())
    device = jax.devices()[0]
    return {"cpu_model": model, "cpu_isa": isa, "device_kind": device.device_kind,
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
            **({"matmul_precision": str(jax.config.jax_default_matmul_precision)}
               if jax.config.jax_default_matmul_precision else {}),
            "jax_version": jax.__version__,
            "jaxlib_version": jaxlib.__version__, "optax_version": optax.__version__,
            "numpy_version": np.__version__, "scipy_version": scipy.__version__,
            "xarray_version": xarray.__version__}


def _git(*args: str) -> str | None:
    """``git ARGS`` run in jaxsym's source directory: its stripped stdout, or None on failure."""
    try:
        result = subprocess.run(["git", *args], capture_output=True, text=True,
                                cwd=Path(__file__).parent, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def git_sha() -> str:
    """The commit of the jaxsym source that ran ("unknown" outside a git checkout)."""
    return _git("rev-parse", "HEAD") or "unknown"


def git_dirty() -> str:
    """"yes" when tracked files differ from that commit, "no", or "unknown"."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return "unknown" if status is None else ("yes" if status else "no")


def code_provenance() -> dict:
    """``{"git_sha", "git_dirty"}`` of the code that trains: read it BEFORE training (a commit
    made while a long run trains must not be recorded as its source)."""
    return {"git_sha": git_sha(), "git_dirty": git_dirty()}
