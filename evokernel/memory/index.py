"""Facade over the compiled ``ExperienceIndex``: tag layout, rebuild from the store, snapshots.

Tag layout (uint32 per row; a row passes a filter when ``tag & mask == value``):

    bits 0-1   kind     1 = experience, 2 = knowledge            (KIND_MASK   = 0x0000_0003)
    bits 8-15  backend  1 = cpu, 2 = cuda, 3 = rocm, 4 = npu, 5 = any   (BACKEND_MASK = 0x0000_FF00)

Other bits are zero (free for later use). Backends are codes, not one-hot bits, so "knowledge of
backend b or any" is two searches merged by similarity (exact: the top n of a union is the top n of
the two top-n lists merged).

Snapshot: ``<memory file>.index`` beside the database, written on close; the store's meta table holds
``snapshot = {generation, sha256, count, embedder, dim}``. It is loaded only when the store's
generation (bumped by triggers on every change to items or reward statistics), the file's sha256, the
embedder, the dimension, the row count and the set of ids all match; anything else rebuilds from the store.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evokernel.memory.records import BACKENDS, KINDS, check_stage
from evokernel.memory.store import Store

__all__ = [
    "KIND_MASK",
    "BACKEND_MASK",
    "tag_of",
    "tag_filter",
    "kind_of_tag",
    "stage_code",
    "build_index",
    "save_snapshot",
    "load_snapshot",
    "snapshot_path",
]

log = logging.getLogger(__name__)

KIND_MASK = 0x0000_0003
BACKEND_MASK = 0x0000_FF00
_KIND_CODE = {kind: i + 1 for i, kind in enumerate(KINDS)}  # experience 1, knowledge 2
_BACKEND_CODE = {backend: i + 1 for i, backend in enumerate(BACKENDS)}  # cpu 1 ... any 5


def tag_of(kind: str, backend: str) -> int:
    """The uint32 tag of an item of this kind and backend."""
    return _KIND_CODE[kind] | (_BACKEND_CODE[backend] << 8)


def kind_of_tag(tag: int) -> str:
    """The item kind a tag encodes."""
    return KINDS[(tag & KIND_MASK) - 1]


def tag_filter(kind: str | None = None, backend: str | None = None) -> tuple[int, int]:
    """(tag_mask, tag_value) passing rows of that kind and backend (None: any)."""
    mask = value = 0
    if kind is not None:
        mask |= KIND_MASK
        value |= _KIND_CODE[kind]
    if backend is not None:
        mask |= BACKEND_MASK
        value |= _BACKEND_CODE[backend] << 8
    return mask, value


def stage_code(stage: str) -> int:
    """The core's stage number (DRAFT or REFINE) for "draft" | "refine"."""
    from evokernel import _core

    return _core.DRAFT if check_stage(stage) == "draft" else _core.REFINE


def new_index(dim: int) -> Any:
    """An empty ExperienceIndex of dimension ``dim``."""
    from evokernel._core import ExperienceIndex

    return ExperienceIndex(dim)


def build_index(store: Store, dim: int) -> tuple[Any, int]:
    """Rebuild an index from the store (embeddings, tags, Q values, reward statistics): (index, generation)."""
    generation, rows, stats = store.index_rows()
    index = new_index(dim)
    if rows:
        bad = next((r.id for r in rows if r.embedding.shape != (dim,)), None)
        if bad is not None:
            from evokernel.errors import UserError

            raise UserError(
                f"{store.path}: item {bad} has an embedding of the wrong dimension (expected {dim}); "
                "reopen the memory with reembed=True"
            )
        ids = np.fromiter((r.id for r in rows), dtype=np.int64, count=len(rows))
        index.add(
            ids,
            np.stack([r.embedding for r in rows]).astype(np.float32, copy=False),
            np.fromiter((tag_of(r.kind, r.backend) for r in rows), dtype=np.uint32, count=len(rows)),
        )
        for stage in ("draft", "refine"):
            q = np.array([r.q_draft if stage == "draft" else r.q_refine for r in rows], dtype=np.float64)
            visits = np.array([r.visits_draft if stage == "draft" else r.visits_refine for r in rows], dtype=np.int64)
            index.set_q(ids, stage_code(stage), q, visits)
    for stage, (count, mean, var) in stats.items():
        index.set_reward_stats(stage_code(stage), count, mean, var)
    return index, generation


def snapshot_path(store: Store) -> Path:
    """Where the index snapshot of a memory file lives."""
    return store.path.with_name(store.path.name + ".index")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_snapshot(index: Any, store: Store, generation: int, embedder_name: str) -> bool:
    """Save the index beside the store if it matches the store at ``generation``; True when saved.

    Call with ``store.lock`` held, so that no in-process write slips in between.
    """
    with store.lock:
        if store.generation() != generation:  # another process wrote: this index is stale
            return False
        path = snapshot_path(store)
        tmp = path.with_name(path.name + ".tmp")
        index.save(str(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        digest = _sha256(tmp)
        os.replace(tmp, path)
        store.set_meta(
            "snapshot",
            {"generation": generation, "sha256": digest, "count": len(index), "embedder": embedder_name,
             "dim": int(index.dim)},
        )  # fmt: skip
        return True


def load_snapshot(store: Store, dim: int, embedder_name: str) -> tuple[Any, int] | None:
    """The snapshot index and its generation when it provably matches the store, else None."""
    from evokernel._core import ExperienceIndex

    record = store.get_meta("snapshot")
    path = snapshot_path(store)
    if not isinstance(record, dict) or not path.is_file():
        return None
    generation = store.generation()
    expected = {"generation": generation, "embedder": embedder_name, "dim": dim}
    if any(record.get(k) != v for k, v in expected.items()):
        log.debug("index snapshot %s is stale (%s vs %s); rebuilding", path, record, expected)
        return None
    if _sha256(path) != record.get("sha256"):
        log.debug("index snapshot %s does not match its recorded checksum; rebuilding", path)
        return None
    try:
        index = ExperienceIndex.load(str(path))
    except (ValueError, OSError) as exc:
        log.debug("index snapshot %s unreadable (%s); rebuilding", path, exc)
        return None
    store_ids = np.asarray(store.ids(), dtype=np.int64)
    if (
        int(index.dim) != dim
        or len(index) != record.get("count")
        or len(index) != len(store_ids)
        or not np.array_equal(np.sort(np.asarray(index.ids(), dtype=np.int64)), store_ids)
        or store.generation() != generation
    ):
        return None
    for stage, (count, mean, var) in store.reward_stats().items():
        index.set_reward_stats(stage_code(stage), count, mean, var)
    return index, generation


def ids_array(ids: Sequence[int]) -> np.ndarray:
    """Item ids as the int64 array the core takes."""
    return np.asarray(list(ids), dtype=np.int64).reshape(-1)
