"""What is embedded for each item and query, with program embeddings cached per source hash.

Experiences embed their task's reference program (``task_source``) with ``embed_program``; an
experience without a source embeds its task name and lesson as text. Knowledge embeds
title + keywords + text with ``embed_text``. Program embeddings are cached in-process and in the
store's ``sources`` table, so a task is traced once per memory.
"""

from __future__ import annotations

import numpy as np

from evokernel.memory.embedders import Embedder, EmbeddingCache
from evokernel.memory.records import NewItem
from evokernel.memory.store import Store

__all__ = ["Vectorizer", "looks_like_program"]


def looks_like_program(text: str) -> bool:
    """True for text that reads as a KernelBench reference program rather than prose."""
    return "class Model" in text and "def forward" in text


def _check(vector: np.ndarray, dim: int, what: str) -> np.ndarray:
    vec = np.asarray(vector, dtype=np.float32).reshape(-1)
    if vec.shape != (dim,) or not np.all(np.isfinite(vec)) or not np.any(vec):
        from evokernel.errors import UserError

        raise UserError(f"the embedder returned an unusable vector for {what} (shape {vec.shape}, dim {dim})")
    return vec


class Vectorizer:
    """Embeds items and queries for one memory (one embedder)."""

    def __init__(self, embedder: Embedder, store: Store | None = None) -> None:
        self.embedder = embedder
        self.dim = int(embedder.dim)
        self.store = store
        self.cache = EmbeddingCache(embedder)

    def program(self, source: str) -> np.ndarray:
        """Embedding of a reference program (in-process cache, then the store's cache, then the embedder)."""
        from evokernel.programs import source_hash

        key = source_hash(source)
        vec = self.cache.get(key)
        if vec is None and self.store is not None:
            vec = self.store.source_embedding(key)
            if vec is not None and vec.shape == (self.dim,):
                self.cache.put(key, vec)
            else:
                vec = None
        if vec is None:
            vec = _check(self.cache.program(source), self.dim, "a program")
        return vec

    def text(self, text: str) -> np.ndarray:
        """Embedding of free text."""
        return _check(self.embedder.embed_text(text), self.dim, "a text")

    def query(self, text_or_source: str) -> np.ndarray:
        """Embedding of a knowledge query: a program embeds as a program, anything else as text."""
        return self.program(text_or_source) if looks_like_program(text_or_source) else self.text(text_or_source)

    def item(self, item: NewItem) -> tuple[np.ndarray, np.ndarray | None]:
        """(item embedding, program embedding to cache with its source or None)."""
        if item.kind == "knowledge":
            return self.text(item.embedding_text()), None
        if item.task_source:
            vec = self.program(item.task_source)
            return vec, vec
        return self.text(f"{item.task_name}\n{item.lesson}"), None
