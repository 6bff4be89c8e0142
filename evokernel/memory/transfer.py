"""Move items between memories: JSON Lines export/import, merge, and the deletion rules (drop tasks, prune).

Export format (one JSON object per line, UTF-8):

    {"type": "header", "format": "evokernel-memory-jsonl", "version": 1, "embedder": {...},
     "reward_stats": {"draft": [count, mean, var], ...}, "exported": <unix time>}
    {"type": "source", "hash": "<16 hex>", "text": "<reference program>"}     before its first item
    {"type": "item", "id": 7, "kind": ..., <every NewItem field but task_source>, "source": "<hash>" | null,
     "created": ..., "q_draft": ..., "q_refine": ..., "visits_draft": ..., "visits_refine": ...,
     "embedding": "<base64 float32>"}
    {"type": "run", "id": ..., "started": ..., "ended": ..., "config": {...}, "summary": {...}}

Import and merge keep code, lessons, Q values, visits and creation times; ids are remapped and parents
follow (a parent outside the imported set becomes None); embeddings are reused when the source used
the same embedder and recomputed otherwise; items already present (same content key) are skipped.
Reward statistics of a stage are adopted only when the target has none for it.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evokernel.errors import UserError
from evokernel.memory.records import Item, NewItem, check_stage
from evokernel.memory.store import Store, StoredRow, content_key
from evokernel.memory.vectors import Vectorizer

__all__ = ["JSONL_FORMAT", "export_jsonl", "read_jsonl", "read_memory", "check_merge_source", "import_records",
           "store_records", "drop_ids", "prune_ids", "Records"]

JSONL_FORMAT = "evokernel-memory-jsonl"
JSONL_VERSION = 1
_NEW_FIELDS = [f.name for f in dataclasses.fields(NewItem) if f.name != "task_source"]
_Q_FIELDS = ("q_draft", "q_refine", "visits_draft", "visits_refine")


def _encode(vector: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode("ascii")


def _decode(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)


def _item_where(task_ids: Sequence[str] | None, exclude_task_ids: Sequence[str]) -> tuple[str, list[str]]:
    conds: list[str] = []
    params: list[str] = []
    if task_ids is not None:
        conds.append(f"items.task_id IN ({','.join('?' * len(task_ids))})" if task_ids else "0")
        params += list(task_ids)
    if exclude_task_ids:
        conds.append(f"items.task_id NOT IN ({','.join('?' * len(exclude_task_ids))})")
        params += list(exclude_task_ids)
    return " AND ".join(conds), params


def export_jsonl(
    store: Store,
    path: str | Path,
    embedder: dict[str, Any],
    *,
    task_ids: Sequence[str] | None = None,
    exclude_task_ids: Sequence[str] = (),
) -> int:
    """Write the store's items (only ``task_ids`` when given, minus ``exclude_task_ids``) as JSON Lines."""
    from evokernel.programs import source_hash

    out = Path(path).expanduser()
    if out.is_dir():
        raise UserError(f"{out}: is a directory; pass a file name for the export (e.g. memory.jsonl)")
    where, params = _item_where(task_ids, exclude_task_ids)
    items = store.query(where, params)
    vectors = store.embeddings([it.id for it in items])
    stats = {stage: list(v) for stage, v in store.reward_stats().items()}
    tmp = out.with_name(out.name + ".tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            header = {"type": "header", "format": JSONL_FORMAT, "version": JSONL_VERSION, "embedder": embedder,
                      "reward_stats": stats, "exported": time.time()}  # fmt: skip
            f.write(json.dumps(header) + "\n")
            seen: set[str] = set()
            for it in items:
                h = source_hash(it.task_source) if it.task_source else None
                if h is not None and h not in seen:
                    seen.add(h)
                    f.write(json.dumps({"type": "source", "hash": h, "text": it.task_source}) + "\n")
                rec: dict[str, Any] = {"type": "item", "id": it.id}
                rec.update({k: getattr(it, k) for k in _NEW_FIELDS})
                rec.update(source=h, created=it.created, **{k: getattr(it, k) for k in _Q_FIELDS})
                rec["embedding"] = _encode(vectors[it.id])
                f.write(json.dumps(rec) + "\n")
            for run in store.runs():
                f.write(json.dumps({"type": "run", **run}) + "\n")
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"{out}: cannot write the export ({exc.strerror or exc}); check the path") from exc
    return len(items)


@dataclasses.dataclass
class Records:
    """Items read from an export or another memory, ready to insert."""

    embedder: dict[str, Any]
    items: list[tuple[Item, np.ndarray | None]]
    reward_stats: dict[str, tuple[int, float, float]]
    runs: list[dict[str, Any]]


def _item_from_record(rec: dict[str, Any], sources: dict[str, str], where: str) -> tuple[Item, np.ndarray | None]:
    missing = [k for k in ("id", "kind", "task_id", "backend", "code") if k not in rec]
    if missing:
        raise UserError(f"{where}: item record lacks {', '.join(missing)}")
    fields = {k: rec[k] for k in _NEW_FIELDS if k in rec}
    fields.setdefault("task_name", rec["task_id"])
    fields.setdefault("stage", "")
    fields.setdefault("lesson", "")
    fields.setdefault("outcome", {})
    fields.setdefault("reward", None)
    fields.setdefault("parent_id", None)
    fields.setdefault("run_id", None)
    h = rec.get("source")
    if h is not None and h not in sources:
        raise UserError(f"{where}: item {rec['id']} names source {h} that no earlier source record defines")
    for k in ("visits_draft", "visits_refine"):
        v = rec.get(k, 0)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or v != int(v):
            raise UserError(f"{where}: {k} must be an integer >= 0 (got {v!r})")
    values = {k: (float if k.startswith("q_") else int)(rec.get(k, 0)) for k in _Q_FIELDS}
    _check_values({**fields, **values}, where)
    item = Item(**fields, task_source=sources.get(h, "") if h else "", id=int(rec["id"]),
                created=float(rec.get("created", time.time())), **values)  # fmt: skip
    try:
        item.validate()
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from exc
    emb = _decode(rec["embedding"]) if isinstance(rec.get("embedding"), str) else None
    return item, emb


def _check_values(fields: dict[str, Any], where: str) -> None:
    """Reject values the memory would store wrongly or that later readers cannot use (NaN Q, a string outcome)."""
    for name in ("q_draft", "q_refine", "reward", "latency_ms"):
        value = fields.get(name)
        if value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value)):
            raise UserError(f"{where}: {name} must be a finite number (got {value!r})")
    for name in ("outcome", "meta"):
        if name in fields and not isinstance(fields[name], dict):
            raise UserError(f"{where}: {name} must be a JSON object (got {type(fields[name]).__name__})")
    keywords = fields.get("keywords", [])
    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
        raise UserError(f"{where}: keywords must be a list of strings")


def _reward_stats_from_header(value: Any, where: str) -> dict[str, tuple[int, float, float]]:
    """The header's ``reward_stats`` checked now, so a bad file fails before the target memory is touched."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserError(f"{where}: reward_stats must be a JSON object (got {type(value).__name__})")
    stats: dict[str, tuple[int, float, float]] = {}
    for stage, entry in value.items():
        try:
            check_stage(stage)
        except UserError as exc:
            raise UserError(f"{where}: reward_stats: {exc}") from exc
        if not isinstance(entry, list) or len(entry) != 3:
            raise UserError(f"{where}: reward_stats.{stage} must be [count, mean, var] (got {entry!r})")
        count, mean, var = entry
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise UserError(f"{where}: reward_stats.{stage}: count must be an integer >= 0 (got {count!r})")
        for name, v in (("mean", mean), ("var", var)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise UserError(f"{where}: reward_stats.{stage}: {name} must be a finite number (got {v!r})")
        if var < 0:
            raise UserError(f"{where}: reward_stats.{stage}: var must be >= 0 (got {var!r})")
        stats[stage] = (count, float(mean), float(var))
    return stats


def read_jsonl(path: str | Path) -> Records:
    """Parse an export file; any malformed line is a UserError naming the file and line."""
    src = Path(path).expanduser()
    if not src.is_file():
        raise UserError(f"{src}: no such export file; pass a .jsonl file written by `evokernel memory export`")
    records = Records(embedder={}, items=[], reward_stats={}, runs=[])
    sources: dict[str, str] = {}
    header_seen = False
    try:
        with open(src, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                where = f"{src}:{lineno}"
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    kind = rec.get("type") if isinstance(rec, dict) else None
                    if not header_seen and (kind != "header" or rec.get("format") != JSONL_FORMAT):
                        raise UserError(f"{where}: not an EvoKernel memory export (no header line)")
                    if kind == "header":
                        header_seen = True
                        if int(rec.get("version", 0)) > JSONL_VERSION:
                            raise UserError(f"{where}: export version {rec['version']} is newer; upgrade evokernel")
                        records.embedder = dict(rec.get("embedder") or {})
                        records.reward_stats = _reward_stats_from_header(rec.get("reward_stats"), where)
                    elif kind == "source":
                        sources[str(rec["hash"])] = str(rec["text"])
                    elif kind == "item":
                        records.items.append(_item_from_record(rec, sources, where))
                    elif kind == "run":
                        records.runs.append({k: rec.get(k) for k in ("id", "started", "ended", "config", "summary")})
                    else:
                        raise UserError(f"{where}: unknown record type {kind!r}")
                except UserError:
                    raise
                except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
                    raise UserError(f"{where}: malformed record ({type(exc).__name__}: {exc})") from exc
    except UnicodeDecodeError as exc:
        raise UserError(f"{src}: not a UTF-8 text file; pass a .jsonl export") from exc
    except OSError as exc:
        raise UserError(f"{src}: cannot read ({exc.strerror or exc})") from exc
    if not header_seen:
        raise UserError(f"{src}: not an EvoKernel memory export (the file is empty: no header line)")
    return records


def store_records(store: Store, embedder: dict[str, Any]) -> Records:
    """Everything in another memory's store, as Records (for merge)."""
    items = store.query()
    vectors = store.embeddings([it.id for it in items])
    return Records(embedder, [(it, vectors.get(it.id)) for it in items], store.reward_stats(), store.runs())


def read_memory(path: str | Path) -> Records:
    """Everything in another memory file, as Records (UserError when it is not a readable memory)."""
    other = Store(Path(path).expanduser(), create=False)
    try:
        return store_records(other, other.get_meta("embedder") or {})
    finally:
        other.close()


def check_merge_source(other_path: str | Path, own_path: Path) -> None:
    """A memory cannot be merged into itself."""
    other = Path(other_path).expanduser()
    if other.resolve() == own_path.resolve():
        raise UserError(f"{other}: cannot merge a memory into itself")


def _parents_first(items: list[tuple[Item, np.ndarray | None]]) -> list[tuple[Item, np.ndarray | None]]:
    """Order items so that every parent inside the set comes before its children (cycles broken)."""
    by_id = {it.id: it for it, _ in items}
    depth: dict[int, int] = {}

    def depth_of(i: int) -> int:
        path: list[int] = []
        cur: int | None = i
        while cur in by_id and cur not in depth and cur not in path:
            path.append(cur)
            cur = by_id[cur].parent_id
        base = 0 if cur is None or cur in path else depth.get(cur, 0)
        for j in reversed(path):
            base += 1
            depth[j] = base
        return depth[i]

    return sorted(items, key=lambda pair: (depth_of(pair[0].id), pair[0].id))


def import_records(store: Store, vectorizer: Vectorizer, records: Records, own_embedder: dict[str, Any]) -> int:
    """Insert records in one transaction (ids remapped, duplicates skipped); the number inserted."""
    reuse = (records.embedder.get("name"), records.embedder.get("dim")) == (
        own_embedder.get("name"),
        own_embedder.get("dim"),
    )
    known: dict[str, int] = store.content_keys()  # content key -> id in the store
    first: dict[str, int] = {}  # content key -> id in the records of its first copy
    parent_map: dict[int, int] = {}  # id in the records -> id in the store
    alias: dict[int, int] = {}  # id of a duplicate in the records -> id of its first copy there
    todo: list[tuple[int, StoredRow]] = []
    for item, emb in _parents_first(records.items):
        key = content_key(item.kind, item.task_id, item.backend, item.stage, item.lesson, item.code, item.created)
        if key in known:
            parent_map[item.id] = known[key]
            continue
        if key in first:
            alias[item.id] = first[key]
            continue
        first[key] = item.id
        if reuse and emb is not None and emb.shape == (vectorizer.dim,):
            vec, src_vec = emb, (emb if item.kind == "experience" and item.task_source else None)
        else:
            vec, src_vec = vectorizer.item(item)  # embedded before the transaction: tracing takes time
        new = NewItem(**{f.name: getattr(item, f.name) for f in dataclasses.fields(NewItem)})
        todo.append((item.id, StoredRow(new, vec, item.created, tuple(getattr(item, k) for k in _Q_FIELDS), src_vec)))
    with store.write():
        for old_id, row in todo:
            if row.item.parent_id is not None:
                parent = row.item.parent_id
                row.item.parent_id = parent_map.get(alias.get(parent, parent))
            parent_map[old_id] = store.insert([row])[0]
        own_stats = store.reward_stats()
        for stage, (count, mean, var) in records.reward_stats.items():
            if stage not in own_stats:
                store.set_reward_stats(check_stage(stage), int(count), float(mean), float(var))
        if records.runs:
            store.merge_runs([r for r in records.runs if r.get("id") is not None and r.get("started") is not None])
    return len(todo)


def drop_ids(store: Store, task_ids: Iterable[str]) -> list[int]:
    """Ids of every item of the named tasks (held-out evaluation)."""
    tasks = list(dict.fromkeys(task_ids))
    if not tasks:
        return []
    return store.ids(f"task_id IN ({','.join('?' * len(tasks))})", tasks)


def prune_ids(
    store: Store,
    *,
    task_ids: Sequence[str] = (),
    older_than_days: float | None = None,
    q_below: float | None = None,
    stage: str = "draft",
    include_knowledge: bool = False,
    now: float | None = None,
) -> list[int]:
    """Ids matching every given rule (task, age, Q of ``stage``); knowledge only with include_knowledge."""
    if not task_ids and older_than_days is None and q_below is None:
        raise UserError("prune needs at least one rule: a task, an age (older than N days) or a Q threshold")
    conds: list[str] = []
    params: list[Any] = []
    if task_ids:
        conds.append(f"task_id IN ({','.join('?' * len(task_ids))})")
        params += list(task_ids)
    if older_than_days is not None:
        if older_than_days < 0:
            raise UserError(f"prune age must be >= 0 days, got {older_than_days}")
        conds.append("created < ?")
        params.append((time.time() if now is None else now) - older_than_days * 86400.0)
    if q_below is not None:
        conds.append(f"q_{check_stage(stage)} < ?")
        params.append(float(q_below))
    if not include_knowledge:
        conds.append("kind = 'experience'")
    return store.ids(" AND ".join(conds), params)
