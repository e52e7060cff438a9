"""jaxsym.engine: executes a study plan: runner, chunks, store, results."""

from jaxsym._lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
