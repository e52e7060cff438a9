"""Scoped float64: library code never flips JAX's global ``jax_enable_x64``.

A notebook user's other computations keep the precision they chose; float64 is switched on only
inside the functions that need it (float64 training, the theory's float64 analyses), with JAX's
``enable_x64`` context manager, and restored on return (also on error). Arrays computed inside
keep their float64 dtype after the scope ends.
"""

from __future__ import annotations

import contextlib
import functools

__all__ = ["float64_scope", "with_float64"]


def float64_scope(enabled: bool = True):
    """A context manager that enables (or, with ``enabled=False``, leaves as it is) float64 in
    JAX for its body."""
    if not enabled:
        return contextlib.nullcontext()
    import jax

    manager = getattr(jax, "enable_x64", None)
    if manager is None:  # pragma: no cover - older JAX spelling
        from jax.experimental import enable_x64 as manager
    return manager(True)


def with_float64(function):
    """Decorator: run ``function`` inside :func:`float64_scope`."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with float64_scope():
            return function(*args, **kwargs)

    return wrapper
