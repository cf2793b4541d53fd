"""Finding a torchvision model builder by name, for the segmenter and detector adapters."""

from __future__ import annotations

from types import ModuleType
from typing import Callable


def builder_names(module: ModuleType) -> list[str]:
    """The model builders a torchvision models sub-module offers (lower-case public callables)."""
    return sorted(n for n in dir(module) if n.islower() and not n.startswith("_") and callable(getattr(module, n)))


def find_builder(module: ModuleType, arch: str, kind: str) -> Callable:
    """The builder called ``arch``; a LookupError listing the choices otherwise (``kind``: "segmentation", ...)."""
    if arch not in builder_names(module):
        raise LookupError(f"torchvision has no {kind} model {arch!r}; choose one of {', '.join(builder_names(module))}")
    return getattr(module, arch)
