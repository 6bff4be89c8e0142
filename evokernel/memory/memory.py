"""``Memory``: the value-driven memory of past attempts, shared by all tasks, backends and runs.

The SQLite store is the source of truth; the compiled index mirrors it (embeddings, tags, Q values,
reward statistics) for retrieval. Every write changes the store first (one transaction) and then the
index, both under the store's write lock, so the two never disagree for long and a snapshot is only
saved for an index that matches the store (see ``index.py``).

Thread safety: every method may be called from any thread. Writes are serialized by the store's
lock; reads (retrieve, get, items, ...) run in parallel on pooled SQLite connections and the index's
shared lock. Processes: several may open one memory; each sees the others' items after ``refresh()``
or reopening, and a snapshot is never saved from an index that missed another process's write.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from evokernel.errors import UserError
from evokernel.memory import index as ix
from evokernel.memory import transfer
from evokernel.memory.embedders import (
    Embedder,
    LiteLLMEmbedder,
    StructuralEmbedder,
    embedder_from_spec,
    embedder_spec,
)
from evokernel.memory.paths import default_memory_path
from evokernel.memory.records import (
    STAGES,
    Item,
    NewItem,
    RetrievalSettings,
    Retrieved,
    check_backend,
    check_stage,
)
from evokernel.memory.store import Store, StoredRow
from evokernel.memory.vectors import Vectorizer

__all__ = ["Memory"]

log = logging.getLogger(__name__)


class Memory:
    """Items, Q values and reward statistics in SQLite, mirrored by an ExperienceIndex for retrieval."""

    def __init__(self, store: Store, embedder: Embedder, *, snapshot: bool = True) -> None:
        """Use ``Memory.open``; this wraps an opened store whose embedder already matches."""
        self._store = store
        self.embedder = embedder
        self.path = store.path
        self.snapshot = snapshot
        self._vectors = Vectorizer(embedder, store)
        self._synced: int | None = None  # store generation the index matches (None: unknown)
        self._index: Any = None
        self.index_origin = ""  # "snapshot" | "rebuilt"
        store.on_commit = self._on_commit
        loaded = ix.load_snapshot(store, self._vectors.dim, embedder.name) if snapshot else None
        if loaded is not None:
            self._index, self._synced = loaded
            self.index_origin = "snapshot"
        else:
            self._rebuild()

    # -- opening and closing -----------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | Path | None = None,
        embedder: Embedder | None = None,
        *,
        reembed: bool = False,
        create: bool = True,
        snapshot: bool = True,
    ) -> Memory:
        """Open (or create) a memory; it keeps the embedder it was made with unless ``reembed``."""
        store = Store(default_memory_path() if path is None else path, create=create)
        try:
            embedder = _settle_embedder(store, embedder, reembed)
            return cls(store, embedder, snapshot=snapshot)
        except BaseException:
            store.close()
            raise

    def close(self) -> None:
        """Save an index snapshot when it provably matches the store, then close the store."""
        store = self._store
        if store is None:
            return
        try:
            if self.snapshot and self._synced is not None:
                record = store.get_meta("snapshot")
                stale = not isinstance(record, dict) or record.get("generation") != self._synced
                if stale and len(self._index) > 0:
                    ix.save_snapshot(self._index, store, self._synced, self.embedder.name)
        except (OSError, sqlite3.Error) as exc:  # e.g. a read-only directory: the next open rebuilds
            log.warning("could not save the index snapshot of %s: %s", self.path, exc)
        finally:
            store.close()
            self._store = None  # type: ignore[assignment]

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return self._store.count()

    def _on_commit(self, before: int, after: int) -> None:
        # Called under the write lock after a commit: the index stays provably in sync only when the
        # store was at the generation the index matched before this write.
        self._synced = after if self._synced == before else None

    def refresh(self) -> bool:
        """Rebuild the index if the store changed behind it (another process wrote); True when rebuilt."""
        with self._store.lock:
            if self._synced is not None and self._synced == self._store.generation():
                return False
            self._rebuild()
            return True

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Make every write inside the block one store transaction: all of it lands, or none (nested writes join)."""
        with self._store.lock:
            try:
                with self._store.write():
                    yield
            except BaseException:
                self._rebuild()  # the index took writes that the store rolled back
                raise

    def _rebuild(self) -> None:
        with self._store.lock:
            self._index, self._synced = ix.build_index(self._store, self._vectors.dim)
            self.index_origin = "rebuilt"

    # -- items -------------------------------------------------------------------------------

    def add(self, items: Sequence[NewItem]) -> list[int]:
        """Store items (one transaction) and index them; returns their ids in order."""
        rows = []
        for item in items:
            item.validate()
            vec, src_vec = self._vectors.item(item)  # embedded outside the lock: tracing takes time
            rows.append(StoredRow(item, vec, source_embedding=src_vec))
        if not rows:
            return []
        with self._store.lock:
            ids = self._store.insert(rows)
            try:
                self._index.add(
                    ix.ids_array(ids),
                    np.stack([r.embedding for r in rows]).astype(np.float32, copy=False),
                    np.array([ix.tag_of(r.item.kind, r.item.backend) for r in rows], dtype=np.uint32),
                )
            except Exception:  # pragma: no cover - the store holds them; make the index agree again
                self._rebuild()
                raise
        return ids

    def get(self, item_id: int) -> Item:
        """One item by id (KeyError when absent)."""
        return self._store.items_by_id([item_id])[0]

    def items(self, *, task_id: str | None = None, kind: str | None = None, backend: str | None = None) -> list[Item]:
        """Items, by id, optionally of one task, kind and backend."""
        conds, params = [], []
        for column, value in (("task_id", task_id), ("kind", kind), ("backend", backend)):
            if value is not None:
                conds.append(f"items.{column} = ?")
                params.append(value)
        return self._store.query(" AND ".join(conds), params)

    def children(self, item_id: int) -> list[Item]:
        """Items whose parent is ``item_id`` (earlier refinements of a start point), by id."""
        return self._store.query("items.parent_id = ?", [int(item_id)])

    def start_points(self, task_id: str, backend: str) -> list[Item]:
        """Feasible experiences of a task on a backend (the refining start-point set P(x)), by id."""
        return self._store.query(
            "items.kind = 'experience' AND items.feasible = 1 AND items.task_id = ? AND items.backend = ?",
            [task_id, check_backend(backend)],
        )

    def _fetch(self, ids: np.ndarray, sims: np.ndarray, scores: np.ndarray) -> list[Retrieved]:
        pairs = [(int(i), float(s), float(c)) for i, s, c in zip(ids, sims, scores) if int(i) >= 0]
        if not pairs:
            return []
        try:
            items = self._store.items_by_id([p[0] for p in pairs])
        except KeyError:  # an item was deleted between the index read and this one: skip it
            found = {it.id: it for it in self._store.query(
                f"items.id IN ({','.join('?' * len(pairs))})", [p[0] for p in pairs])}  # fmt: skip
            return [Retrieved(found[i], s, c) for i, s, c in pairs if i in found]
        return [Retrieved(it, s, c) for it, (_, s, c) in zip(items, pairs)]

    # -- retrieval ---------------------------------------------------------------------------

    def retrieve(
        self,
        task_source: str,
        stage: str,
        backend: str,
        settings: RetrievalSettings,
        *,
        seed: int = 0,
        exclude: Sequence[int] = (),
        pool_factor: float | None = None,
    ) -> list[Retrieved]:
        """Experiences of ``backend`` for a task through the value-driven selection (mode "none": [])."""
        check_stage(stage)
        check_backend(backend)
        if settings.mode == "none" or settings.n == 0:
            return []
        query = self._vectors.program(task_source)
        similarity_only = settings.mode == "similarity"
        mask, value = ix.tag_filter("experience", backend)
        ids, sims, scores = self._index.select(
            query,
            settings.n,
            ix.stage_code(stage),
            pool_factor=float(settings.pool_factor if pool_factor is None else pool_factor),
            w_sim=settings.w_sim,
            w_q=0.0 if similarity_only else settings.w_q,
            q_floor=float("-inf") if similarity_only else settings.q_floor,
            epsilon=settings.epsilon,
            seed=int(seed),
            tag_mask=mask,
            tag_value=value,
            exclude=ix.ids_array(exclude),
        )
        return self._fetch(ids, sims, scores)

    def retrieve_knowledge(self, query_text_or_source: str, backend: str, n: int) -> list[Retrieved]:
        """The ``n`` knowledge items of ``backend`` or "any" most similar to a program or text (no Q)."""
        check_backend(backend)
        if n <= 0:
            return []
        query = self._vectors.query(query_text_or_source)
        found: list[tuple[float, int]] = []
        for b in dict.fromkeys((backend, "any")):
            mask, value = ix.tag_filter("knowledge", b)
            ids, sims = self._index.search(query, n, tag_mask=mask, tag_value=value)
            found += [(float(s), int(i)) for i, s in zip(ids, sims) if int(i) >= 0]
        found.sort(key=lambda p: (-p[0], p[1]))
        top = found[:n]
        sims = np.array([s for s, _ in top], dtype=np.float32)
        return self._fetch(np.array([i for _, i in top], dtype=np.int64), sims, sims)

    # -- values and rewards ------------------------------------------------------------------

    def record_rewards(
        self, item_ids: Sequence[int], stage: str, reward: float, alpha: float = 0.2
    ) -> dict[int, tuple[float, float]]:
        """Q <- Q + alpha (reward - Q) for each experience listed (knowledge is skipped); persisted.

        Returns id -> (Q before, Q after); an id listed twice is updated twice."""
        st = ix.stage_code(stage)
        with self._store.lock:
            for i in item_ids:
                if not self._index.contains(int(i)):
                    raise KeyError(f"no memory item with id {int(i)}")
            ids = [int(i) for i in item_ids if ix.kind_of_tag(int(self._index.tag(int(i)))) == "experience"]
            if not ids:
                return {}
            arr = ix.ids_array(ids)
            before = np.asarray(self._index.get_q(arr, st), dtype=np.float64)
            after = np.asarray(self._index.update_q(arr, st, float(reward), alpha=float(alpha)), dtype=np.float64)
            unique = ix.ids_array(dict.fromkeys(ids))
            try:
                self._store.set_q(unique, stage, self._index.get_q(unique, st), self._index.get_visits(unique, st))
            except BaseException:  # keep the index equal to the store
                self._rebuild()
                raise
        result: dict[int, tuple[float, float]] = {}
        for i, b, a in zip(ids, before, after):
            result[i] = (result[i][0] if i in result else float(b), float(a))
        return result

    def normalize_reward(self, stage: str, reward: float) -> float:
        """Update the stage's running reward statistics with ``reward`` (persisted); the normalized reward."""
        st = ix.stage_code(stage)
        with self._store.lock:
            out = float(self._index.normalize_reward(st, float(reward)))
            count, mean, var = self._index.reward_stats(st)
            try:
                self._store.set_reward_stats(stage, count, mean, var)
            except BaseException:
                self._rebuild()
                raise
        return out

    def reward_stats(self, stage: str) -> tuple[int, float, float]:
        """(count, mean, var) of a stage's running reward statistics."""
        count, mean, var = self._index.reward_stats(ix.stage_code(stage))
        return int(count), float(mean), float(var)

    # -- runs and statistics -----------------------------------------------------------------

    def begin_run(self, config: dict[str, Any]) -> str:
        """Record the start of a run; returns its id."""
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        self._store.add_run(run_id, config)
        return run_id

    def end_run(self, run_id: str, summary: dict[str, Any]) -> None:
        """Record the end of a run with its summary."""
        self._store.end_run(run_id, summary)

    def runs(self) -> list[dict[str, Any]]:
        """Every recorded run, oldest first."""
        return self._store.runs()

    def stats(self) -> dict[str, Any]:
        """Counts by kind, backend and stage, tasks, runs, reward statistics, embedder and file size."""
        out = self._store.counts()
        out.update(
            path=str(self.path),
            embedder=embedder_spec(self.embedder),
            index=self.index_origin,
            reward_stats={s: dict(zip(("count", "mean", "var"), self.reward_stats(s))) for s in STAGES},
            file_bytes=sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file()),
        )
        return out

    def integrity_check(self) -> str:
        """SQLite's integrity check of the store ("ok" when sound)."""
        return self._store.integrity_check()

    # -- transfer and deletion ---------------------------------------------------------------

    def export_jsonl(
        self, path: str | Path, *, task_ids: Sequence[str] | None = None, exclude_task_ids: Sequence[str] = ()
    ) -> int:
        """Write items (of ``task_ids`` when given, minus ``exclude_task_ids``) as JSON Lines; the count."""
        return transfer.export_jsonl(
            self._store, path, embedder_spec(self.embedder), task_ids=task_ids, exclude_task_ids=exclude_task_ids
        )

    def import_jsonl(self, path: str | Path) -> int:
        """Add the items of an export (re-embedded when its embedder differs); the number added."""
        return self.import_records(transfer.read_jsonl(path))

    def merge(self, other_path: str | Path) -> int:
        """Add the items of another memory file (ids remapped, parents kept); the number added."""
        transfer.check_merge_source(other_path, self.path)
        return self.import_records(transfer.read_memory(other_path))

    def import_records(self, records: transfer.Records) -> int:
        """Add records already read (``transfer.read_jsonl`` / ``transfer.read_memory``), so a caller can
        check a source before it opens or creates the memory; the number added."""
        with self._store.lock:
            added = transfer.import_records(self._store, self._vectors, records, embedder_spec(self.embedder))
            if added:
                self._rebuild()
            else:
                self._index_reward_stats()
        return added

    def _index_reward_stats(self) -> None:
        for stage, (count, mean, var) in self._store.reward_stats().items():
            self._index.set_reward_stats(ix.stage_code(stage), count, mean, var)

    def drop_tasks(self, task_ids: Sequence[str]) -> int:
        """Delete every item of the named tasks (e.g. held-out evaluation tasks); the number deleted."""
        return self._delete(transfer.drop_ids(self._store, task_ids))

    def prune(
        self,
        *,
        task_ids: Sequence[str] = (),
        older_than_days: float | None = None,
        q_below: float | None = None,
        stage: str = "draft",
        include_knowledge: bool = False,
        dry_run: bool = False,
    ) -> int:
        """Delete items matching every given rule (task, age, Q of ``stage``); knowledge is kept unless asked.

        Returns the number deleted (with ``dry_run``: the number that would be)."""
        ids = transfer.prune_ids(
            self._store,
            task_ids=task_ids,
            older_than_days=older_than_days,
            q_below=q_below,
            stage=stage,
            include_knowledge=include_knowledge,
        )
        return len(ids) if dry_run else self._delete(ids)

    def _delete(self, ids: Sequence[int]) -> int:
        if not ids:
            return 0
        with self._store.lock:
            self._store.delete(ids)
            self._index.remove(ix.ids_array(ids))
        return len(ids)


def _settle_embedder(store: Store, embedder: Embedder | None, reembed: bool) -> Embedder:
    """The embedder to use: the recorded one, or the given one when it matches (or re-embedding)."""
    spec = store.get_meta("embedder")
    if spec is None or (embedder is not None and store.count() == 0):
        embedder = embedder or StructuralEmbedder()
        store.set_meta("embedder", embedder_spec(embedder))
        return embedder
    if embedder is None:
        return embedder_from_spec(spec, str(store.path))
    if embedder.name == spec.get("name"):
        if isinstance(embedder, LiteLLMEmbedder):  # no request just to learn the dimension
            embedder.assume_dim(int(spec.get("dim", 0)))
        if int(embedder.dim) == spec.get("dim"):
            return embedder
    if not reembed:
        raise UserError(
            f"{store.path}: made with embedder {spec.get('name')!r} (dim {spec.get('dim')}), "
            f"opened with {embedder.name!r}; use the same embedder or re-embed "
            "(reembed=True, CLI --reembed)"
        )
    _reembed(store, embedder)
    return embedder


def _reembed(store: Store, embedder: Embedder) -> None:
    """Recompute every item's embedding with ``embedder`` and record it (one transaction)."""
    vectors = Vectorizer(embedder)  # no store: its cached source embeddings belong to the old embedder
    new: dict[int, np.ndarray] = {}
    sources: dict[str, np.ndarray] = {}
    from evokernel.programs import source_hash

    for item in store.query():
        vec, src_vec = vectors.item(item)
        new[item.id] = vec
        if src_vec is not None:
            sources[source_hash(item.task_source)] = src_vec
    with store.write():
        store.set_embeddings(new, sources)
        store.set_meta("embedder", embedder_spec(embedder))
    log.info("re-embedded %d items of %s with %s", len(new), store.path, embedder.name)
