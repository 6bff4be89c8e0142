"""Embedders: map a reference program or a note to a float32 vector; items of different embedders never mix.

``StructuralEmbedder`` (the default) is offline and deterministic: signed feature hashing (blake2b, so
no dependence on Python's hash randomization) over what ``programs.profile_program`` sees when it traces
the program on meta tensors (aten ops, module types, ranks, dtypes, identifiers), and over words for
text. Words from programs and from notes share one namespace, so a note about "softmax" is near a
softmax program. ``LiteLLMEmbedder`` calls an embedding model through litellm (imported lazily).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import threading
from collections import Counter, OrderedDict
from typing import Any, Protocol, runtime_checkable

import numpy as np

from evokernel.errors import UserError

__all__ = [
    "Embedder",
    "StructuralEmbedder",
    "LiteLLMEmbedder",
    "EmbeddingCache",
    "embedder_spec",
    "embedder_from_spec",
    "embedder_from_name",
]


@runtime_checkable
class Embedder(Protocol):
    """Maps programs and texts into one vector space of dimension ``dim``."""

    name: str
    dim: int

    def embed_program(self, source: str) -> np.ndarray:
        """Embed a KernelBench-format reference program (float32[dim])."""
        ...

    def embed_text(self, text: str) -> np.ndarray:
        """Embed free text, e.g. a knowledge note (float32[dim])."""
        ...


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+[a-z]*")
_STOP = frozenset(
    "a an and are as at be by for from in into is it of on or that the this to with self x torch nn "
    "return def class import super __init__ forward tensor int float none true false".split()
)


def _words(text: str) -> list[str]:
    """Lowercase words of a text, without stop words."""
    return [w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in _STOP and len(w) > 1]


def _subtokens(word: str) -> list[str]:
    """Parts of an identifier: ``log_softmax`` -> [log, softmax]; ``LeakyReLU`` -> [leaky, relu]."""
    parts = [p for chunk in word.split("_") for p in _CAMEL.findall(chunk)] or [word]
    parts = [p.lower() for p in parts if len(p) > 1 and p.lower() not in _STOP]
    return parts if len(parts) > 1 else []


class _Features:
    """A weighted bag of string features, hashed into a signed vector."""

    def __init__(self) -> None:
        self.weights: dict[str, float] = {}

    def add(self, feature: str, weight: float = 1.0) -> None:
        self.weights[feature] = self.weights.get(feature, 0.0) + weight

    def add_word(self, word: str, weight: float) -> None:
        word = word.lower()
        if not word or word in _STOP:
            return
        self.add("w:" + word, weight)
        for part in _subtokens(word):
            self.add("w:" + part, weight * 0.7)

    def vector(self, dim: int) -> np.ndarray:
        out = np.zeros(dim, dtype=np.float64)
        if not self.weights:
            self.add("empty")
        for feature, weight in sorted(self.weights.items()):
            digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
            h = int.from_bytes(digest, "little")
            out[h % dim] += weight if (h >> 63) & 1 else -weight
        norm = float(np.linalg.norm(out))
        if norm == 0.0:  # every feature cancelled out: fall back to a fixed direction
            out[0] = 1.0
            norm = 1.0
        return (out / norm).astype(np.float32)


class StructuralEmbedder:
    """Default offline embedder: feature hashing over a program's traced structure and over words."""

    def __init__(self, dim: int = 256) -> None:
        if dim < 8:
            raise UserError(f"structural embedder dimension must be >= 8, got {dim}")
        self.name = "structural-v1"
        self.dim = dim

    def embed_text(self, text: str) -> np.ndarray:
        """Embed words (and identifier parts) with sublinear term frequency."""
        feats = _Features()
        for word, count in sorted(Counter(_words(text)).items()):
            feats.add_word(word, 1.0 + math.log(count))
        return feats.vector(self.dim)

    def embed_program(self, source: str) -> np.ndarray:
        """Embed a reference program from its meta-traced profile; unloadable sources embed as text."""
        from evokernel.programs import profile_program

        try:
            profile = profile_program(source)
        except (UserError, RecursionError, ValueError):  # not a loadable program: treat as text
            return self.embed_text(source)
        feats = _Features()
        for op in profile.ops:
            weight = 1.0 + math.log(profile.op_counts.get(op, 1))
            feats.add("op:" + op, 1.5 * weight)
            feats.add_word(op.split(".", 1)[-1].strip("_"), weight)
        for a, b in zip(profile.ops, profile.ops[1:]):
            feats.add(f"opseq:{a}>{b}", 0.5)
        for mod in profile.module_types:
            feats.add("mod:" + mod, 1.0)
            feats.add_word(mod, 0.5)
        for ident in profile.identifiers:
            if not (ident.startswith("__") or ident in _STOP):
                feats.add_word(ident, 0.5)
        feats.add(f"n_in:{len(profile.input_shapes)}", 0.3)
        for shape in profile.input_shapes:
            feats.add(f"in_rank:{len(shape)}", 0.5)
        for dtype in sorted(set(profile.input_dtypes)):
            feats.add("dtype:" + dtype, 0.3)
        for shape in profile.output_shapes:
            feats.add(f"out_rank:{len(shape)}", 0.3)
        if profile.output_shapes and profile.input_shapes:
            same = profile.output_shapes[0] == profile.input_shapes[0]
            feats.add("shape:same" if same else "shape:changed", 0.3)
        if not profile.traced:
            feats.add("untraced", 0.3)
            for word in _words(source):
                feats.add_word(word, 0.1)
        return feats.vector(self.dim)


class LiteLLMEmbedder:
    """An embedding model reached through litellm (any provider; ``api_base`` for local servers)."""

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        dim: int | None = None,
        max_chars: int = 8000,
        timeout: float = 60.0,
    ) -> None:
        self.model = model
        self.name = f"litellm:{model}"
        self.api_base = api_base
        self._api_key = api_key
        self._dim = dim
        self.max_chars = max_chars
        self.timeout = timeout

    @property
    def dim(self) -> int:
        """Dimension of the model's vectors (asked of the model once when not given)."""
        if self._dim is None:
            self._dim = int(self._embed(["dimension probe"])[0].shape[0])
        return self._dim

    @property
    def known_dim(self) -> int | None:
        """The dimension if already known (given or probed), without asking the model."""
        return self._dim

    def assume_dim(self, dim: int) -> None:
        """Take the dimension from a memory's record instead of probing the model."""
        if self._dim is None:
            self._dim = int(dim)

    def embed_text(self, text: str) -> np.ndarray:
        """Embed one text (truncated to ``max_chars``)."""
        return self._embed([text])[0]

    def embed_program(self, source: str) -> np.ndarray:
        """Embed a program's source text."""
        return self._embed([source])[0]

    def embed_texts(self, texts: list[str]) -> list[np.ndarray]:
        """Embed several texts in one request."""
        return self._embed(texts) if texts else []

    def _embed(self, texts: list[str]) -> list[np.ndarray]:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        inputs = [t[: self.max_chars] or " " for t in texts]
        kwargs: dict[str, Any] = {"model": self.model, "input": inputs, "timeout": self.timeout}
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if self._api_key:
            kwargs["api_key"] = self._api_key
        try:
            response = litellm.embedding(**kwargs)
        except Exception as exc:  # provider errors are the user's to fix (key, model name, server)
            msg = " ".join(str(exc).split())[:300]
            raise UserError(
                f"embedding model {self.model!r} failed: {type(exc).__name__}: {msg}; "
                "check the model name, its API key and api_base"
            ) from exc
        data = sorted(response.data, key=lambda d: _field(d, "index", 0))
        vectors = [np.asarray(_field(d, "embedding"), dtype=np.float32) for d in data]
        if len(vectors) != len(inputs) or any(v.ndim != 1 or v.size == 0 for v in vectors):
            raise UserError(f"embedding model {self.model!r} returned {len(vectors)} vectors for {len(inputs)} inputs")
        if self._dim is not None and any(v.shape[0] != self._dim for v in vectors):
            raise UserError(
                f"embedding model {self.model!r} returned vectors of dimension {vectors[0].shape[0]}, "
                f"expected {self._dim}"
            )
        return vectors


def _field(obj: Any, key: str, default: Any = None) -> Any:
    return obj.get(key, default) if isinstance(obj, dict) else getattr(obj, key, default)


class EmbeddingCache:
    """Program embeddings cached in-process by source hash (tracing costs time); thread-safe."""

    def __init__(self, embedder: Embedder, capacity: int = 4096) -> None:
        self.embedder = embedder
        self.capacity = capacity
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> np.ndarray | None:
        """The cached vector for a source hash, or None."""
        with self._lock:
            vec = self._cache.get(key)
            if vec is not None:
                self._cache.move_to_end(key)
            return vec

    def put(self, key: str, vector: np.ndarray) -> None:
        """Remember a vector for a source hash."""
        with self._lock:
            self._cache[key] = vector
            self._cache.move_to_end(key)
            while len(self._cache) > self.capacity:
                self._cache.popitem(last=False)

    def program(self, source: str) -> np.ndarray:
        """Embedding of a program, traced at most once per source text."""
        from evokernel.programs import source_hash

        key = source_hash(source)
        vec = self.get(key)
        if vec is None:
            with self._lock:  # tracing installs dispatch modes; one program at a time
                vec = self._cache.get(key)
                if vec is None:
                    vec = np.asarray(self.embedder.embed_program(source), dtype=np.float32)
            self.put(key, vec)
        return vec

    def clear(self) -> None:
        """Forget every cached vector."""
        with self._lock:
            self._cache.clear()


def embedder_spec(embedder: Embedder) -> dict[str, Any]:
    """What a memory records about its embedder (never an API key)."""
    spec: dict[str, Any] = {"name": embedder.name, "dim": int(embedder.dim)}
    if isinstance(embedder, LiteLLMEmbedder):
        spec.update(type="litellm", model=embedder.model, api_base=embedder.api_base)
    elif isinstance(embedder, StructuralEmbedder):
        spec.update(type="structural")
    return spec


def embedder_from_spec(spec: dict[str, Any], where: str = "the memory") -> Embedder:
    """Rebuild the embedder a memory recorded; a custom one must be passed by the caller."""
    kind = spec.get("type")
    if kind == "structural" and spec.get("name") == "structural-v1":
        return StructuralEmbedder(int(spec["dim"]))
    if kind == "litellm":
        return LiteLLMEmbedder(str(spec["model"]), api_base=spec.get("api_base"), dim=int(spec["dim"]))
    raise UserError(
        f"{where} was made with embedder {spec.get('name')!r} (dim {spec.get('dim')}); "
        "pass that embedder when opening it"
    )


def embedder_from_name(name: str, *, api_base: str | None = None) -> Embedder:
    """Embedder for a command-line name: ``structural`` or ``litellm:<model>``."""
    if name in ("structural", "structural-v1"):
        return StructuralEmbedder()
    if name.startswith("litellm:") and len(name) > len("litellm:"):
        return LiteLLMEmbedder(name[len("litellm:") :], api_base=api_base)
    raise UserError(f"unknown embedder {name!r}; use 'structural' or 'litellm:<model>'")
