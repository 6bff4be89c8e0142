"""The value-driven memory: SQLite store (source of truth), index facade over ``_core``, embedders.

Public names are imported lazily, so ``import evokernel.memory`` loads neither torch nor the compiled core.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Memory": "evokernel.memory.memory",
    "NewItem": "evokernel.memory.records",
    "Item": "evokernel.memory.records",
    "Retrieved": "evokernel.memory.records",
    "RetrievalSettings": "evokernel.memory.records",
    "Embedder": "evokernel.memory.embedders",
    "StructuralEmbedder": "evokernel.memory.embedders",
    "LiteLLMEmbedder": "evokernel.memory.embedders",
    "default_memory_path": "evokernel.memory.paths",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'evokernel.memory' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
