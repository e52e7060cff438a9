"""Lazy submodule access for jaxsym's packages: ``jaxsym.engine.store`` works after
``import jaxsym`` without importing every module (and JAX) up front."""

from __future__ import annotations

import importlib
import importlib.util


def submodule_getattr(package: str):
    """A module ``__getattr__`` that imports ``package.NAME`` on first attribute access."""

    def __getattr__(name: str):
        if not name.startswith("_") and importlib.util.find_spec(f"{package}.{name}") is not None:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
