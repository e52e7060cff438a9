"""jaxsym.core: one network, pure and unbatched."""

from jaxsym._lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
