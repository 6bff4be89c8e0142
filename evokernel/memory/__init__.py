"""The value-driven memory: SQLite store (source of truth), index facade over ``_core``, embedders.

Public names are imported lazily, so ``import evokernel.memory`` loads neither torch nor the compiled core.
"""

from __future__ import annotations

from evokernel._lazy import lazy_getattr

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


__getattr__ = lazy_getattr(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted(__all__)
