"""jaxsym.study: TOML -> validated Study -> StudyPlan (no JAX)."""

from jaxsym._lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
