"""The SQLite store, the memory's source of truth: items, Q values, reward statistics, runs.

Concurrency: one writer connection guarded by a lock (writes are serialized within a process; across
processes SQLite's busy timeout serializes them) and a pool of reader connections, one borrowed per
read. WAL mode lets reads run in parallel with a write; every read is one statement (or one read
transaction), so it sees one committed state. Each logical write is one ``BEGIN IMMEDIATE`` ...
``COMMIT`` transaction with ``synchronous=FULL``: a process killed at any point leaves every committed
write in place.

Triggers bump ``state.generation`` on every change to items or reward statistics, whoever makes it
(even the sqlite3 shell); an index snapshot is only trusted when it was saved at the current generation.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evokernel.errors import UserError
from evokernel.memory.records import Item, NewItem, check_stage

__all__ = ["Store", "StoredRow", "IndexRow", "SCHEMA_VERSION", "FORMAT", "content_key"]

FORMAT = "evokernel-memory"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS state (id INTEGER PRIMARY KEY CHECK (id = 0), generation INTEGER NOT NULL);
INSERT OR IGNORE INTO state (id, generation) VALUES (0, 0);
CREATE TABLE IF NOT EXISTS sources (hash TEXT PRIMARY KEY, text TEXT NOT NULL, embedding BLOB);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('experience', 'knowledge')),
    task_id TEXT NOT NULL,
    task_name TEXT NOT NULL,
    backend TEXT NOT NULL,
    stage TEXT NOT NULL,
    code TEXT NOT NULL,
    lesson TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reward REAL,
    parent_id INTEGER REFERENCES items(id) ON DELETE SET NULL,
    run_id TEXT,
    feasible INTEGER NOT NULL,
    latency_ms REAL,
    meta TEXT NOT NULL,
    source_hash TEXT REFERENCES sources(hash),
    keywords TEXT NOT NULL,
    created REAL NOT NULL,
    q_draft REAL NOT NULL DEFAULT 0,
    q_refine REAL NOT NULL DEFAULT 0,
    visits_draft INTEGER NOT NULL DEFAULT 0,
    visits_refine INTEGER NOT NULL DEFAULT 0,
    embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS items_task ON items (task_id, backend);
CREATE INDEX IF NOT EXISTS items_parent ON items (parent_id);
CREATE TABLE IF NOT EXISTS reward_stats (
    stage TEXT PRIMARY KEY, count INTEGER NOT NULL, mean REAL NOT NULL, var REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, started REAL NOT NULL, ended REAL, config TEXT NOT NULL, summary TEXT
);
"""
_TRIGGERS = [
    f"CREATE TRIGGER IF NOT EXISTS gen_{table}_{op.lower()} AFTER {op} ON {table} "
    "BEGIN UPDATE state SET generation = generation + 1 WHERE id = 0; END;"
    for table in ("items", "reward_stats")
    for op in ("INSERT", "UPDATE", "DELETE")
]

_ITEM_COLUMNS = (
    "items.id, kind, task_id, task_name, backend, stage, code, lesson, outcome, reward, parent_id, run_id, "
    "feasible, latency_ms, meta, sources.text, keywords, created, q_draft, q_refine, visits_draft, visits_refine"
)
_ITEM_FROM = "items LEFT JOIN sources ON sources.hash = items.source_hash"


@dataclass
class IndexRow:
    """What the index needs of one item."""

    id: int
    kind: str
    backend: str
    q_draft: float
    q_refine: float
    visits_draft: int
    visits_refine: int
    embedding: np.ndarray


@dataclass
class StoredRow:
    """An item to insert with everything the store keeps (Q values for imports; None: fresh)."""

    item: NewItem
    embedding: np.ndarray
    created: float | None = None
    q: tuple[float, float, int, int] | None = None  # q_draft, q_refine, visits_draft, visits_refine
    source_embedding: np.ndarray | None = None  # cache the program embedding with the source


def _item_from_row(row: Sequence[Any]) -> Item:
    return Item(
        id=row[0],
        kind=row[1],
        task_id=row[2],
        task_name=row[3],
        backend=row[4],
        stage=row[5],
        code=row[6],
        lesson=row[7],
        outcome=json.loads(row[8]),
        reward=row[9],
        parent_id=row[10],
        run_id=row[11],
        feasible=bool(row[12]),
        latency_ms=row[13],
        meta=json.loads(row[14]),
        task_source=row[15] or "",
        keywords=json.loads(row[16]),
        created=row[17],
        q_draft=row[18],
        q_refine=row[19],
        visits_draft=row[20],
        visits_refine=row[21],
    )


def content_key(kind: str, task_id: str, backend: str, stage: str, lesson: str, code: str, created: float) -> str:
    """Identity of an item's content: knowledge by backend, title and text; experiences also by
    task, stage and creation time (the same attempt exported and imported twice is one item)."""
    if kind == "knowledge":
        parts = [kind, backend, lesson, code]
    else:
        parts = [kind, task_id, backend, stage, code, repr(created)]
    return hashlib.blake2b("\x00".join(parts).encode("utf-8"), digest_size=16).hexdigest()


def _blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


def _make_parent(path: Path) -> None:
    """Create the folders above a new memory file (UserError naming the path when that cannot be done)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((a for a in path.parents if a.exists()), None)
        if blocker is not None and not blocker.is_dir():
            why = f"{blocker} is a file, not a folder"
        else:
            why = f"{exc.strerror or exc}: {path.parent}"
        raise UserError(f"{path}: cannot create the memory there ({why}); pass another memory path (--memory)") from exc


class Store:
    """SQLite-backed store of a memory; thread-safe (see module docstring for the rule)."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path).expanduser()
        if self.path.is_dir():
            raise UserError(f"{self.path}: is a directory; pass the path of a memory file (e.g. memory.sqlite)")
        if not self.path.exists():
            if not create:
                raise UserError(f"{self.path}: no memory here; check the path or create one first (e.g. by import)")
            _make_parent(self.path)
        self._write_lock = threading.RLock()
        self._tx_owner: int | None = None  # thread inside an open write transaction
        self._pool_lock = threading.Lock()
        self._free: list[sqlite3.Connection] = []
        self._all: list[sqlite3.Connection] = []
        self._closed = False
        # called after a commit that changed items or reward statistics: (generation before, after)
        self.on_commit: Callable[[int, int], None] | None = None
        try:
            self._writer = self._connect()
            self._init_schema()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise UserError(
                f"{self.path}: not a readable EvoKernel memory ({exc}); pass another path or move the file away"
            ) from exc

    # -- connections -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA synchronous = FULL")
        with self._pool_lock:
            self._all.append(conn)
        return conn

    def _init_schema(self) -> None:
        conn = self._writer
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.DatabaseError(f"cannot switch to WAL journal mode (got {mode})")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "meta" not in tables:
            raise sqlite3.DatabaseError("an SQLite file without EvoKernel memory tables")
        if "meta" in tables:
            values = dict(conn.execute("SELECT key, value FROM meta WHERE key IN ('format', 'schema_version')"))
            if values.get("format") != json.dumps(FORMAT):
                raise sqlite3.DatabaseError("an SQLite file that is not an EvoKernel memory")
            version = int(values.get("schema_version", "0"))
            if version > SCHEMA_VERSION:
                raise UserError(
                    f"{self.path}: memory schema {version} is newer than this EvoKernel understands "
                    f"({SCHEMA_VERSION}); upgrade evokernel"
                )
        conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in [*_SCHEMA.split(";"), *_TRIGGERS]:
                if stmt.strip():
                    conn.execute(stmt)
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('format', ?)", (json.dumps(FORMAT),))
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('created', ?)", (repr(time.time()),))
        except BaseException:
            conn.rollback()
            raise
        conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """Borrow a reader connection (statements run in autocommit; wrap several in BEGIN for one view).

        The thread inside an open write transaction reads through the writer, so it sees its own writes."""
        self._check_open()
        if self._tx_owner == threading.get_ident():
            yield self._writer
            return
        with self._pool_lock:
            conn = self._free.pop() if self._free else None
        if conn is None:
            conn = self._connect()
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.rollback()
            with self._pool_lock:
                self._free.append(conn)

    @contextmanager
    def read_view(self) -> Iterator[sqlite3.Connection]:
        """A reader connection inside one read transaction (one consistent state); inside the calling
        thread's own write transaction, that transaction is the view."""
        with self.read() as conn:
            if conn is self._writer:
                yield conn
                return
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.rollback()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT; rolled back if the block raises)."""
        self._check_open()
        with self._write_lock:
            conn = self._writer
            if conn.in_transaction:  # nested: part of the enclosing transaction
                yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            self._tx_owner = threading.get_ident()
            try:
                before = self._generation(conn)
                yield conn
                after = self._generation(conn)
            except BaseException:
                conn.rollback()
                raise
            finally:
                self._tx_owner = None
            conn.execute("COMMIT")
            if self.on_commit is not None and after != before:
                self.on_commit(before, after)

    @property
    def lock(self) -> threading.RLock:
        """The write lock: hold it to make a store write and the matching index change one step."""
        return self._write_lock

    @staticmethod
    def _generation(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT generation FROM state WHERE id = 0").fetchone()
        return 0 if row is None else int(row[0])

    def _check_open(self) -> None:
        if self._closed:
            raise UserError(f"{self.path}: memory is closed")

    def close(self) -> None:
        """Close every connection (idempotent)."""
        self._closed = True
        with self._pool_lock:
            conns, self._all, self._free = self._all, [], []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:  # pragma: no cover - closing is best effort
                pass

    # -- meta and state ----------------------------------------------------------------------

    def get_meta(self, key: str) -> Any:
        """A JSON value from the meta table, or None."""
        with self.read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            return json.loads(row[0])
        except json.JSONDecodeError:
            return row[0]

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON value in the meta table (its own transaction unless one is open)."""
        with self.write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def generation(self) -> int:
        """Counter bumped by triggers on every change to items or reward statistics."""
        with self.read() as conn:
            return int(conn.execute("SELECT generation FROM state WHERE id = 0").fetchone()[0])

    def integrity_check(self) -> str:
        """SQLite's own integrity check ("ok" when the file is sound)."""
        with self.read() as conn:
            return "; ".join(r[0] for r in conn.execute("PRAGMA integrity_check"))

    # -- items -------------------------------------------------------------------------------

    def insert(self, rows: Sequence[StoredRow], parent_map: dict[int, int] | None = None) -> list[int]:
        """Insert items in one transaction; parent ids are mapped through ``parent_map`` when given."""
        ids: list[int] = []
        with self.write() as conn:
            for row in rows:
                ids.append(self._insert_one(conn, row, parent_map))
        return ids

    def _insert_one(self, conn: sqlite3.Connection, row: StoredRow, parent_map: dict[int, int] | None) -> int:
        it = row.item
        it.validate()
        source_hash = None
        if it.task_source:
            from evokernel.programs import source_hash as _hash

            source_hash = _hash(it.task_source)
            conn.execute("INSERT OR IGNORE INTO sources (hash, text) VALUES (?, ?)", (source_hash, it.task_source))
            if row.source_embedding is not None:
                conn.execute(
                    "UPDATE sources SET embedding = ? WHERE hash = ? AND embedding IS NULL",
                    (_blob(row.source_embedding), source_hash),
                )
        parent = it.parent_id
        if parent is not None and parent_map is not None:
            parent = parent_map.get(parent)
        q = row.q or (0.0, 0.0, 0, 0)
        try:
            cur = conn.execute(
                "INSERT INTO items (kind, task_id, task_name, backend, stage, code, lesson, outcome, reward, "
                "parent_id, run_id, feasible, latency_ms, meta, source_hash, keywords, created, q_draft, q_refine, "
                "visits_draft, visits_refine, embedding) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    it.kind, it.task_id, it.task_name, it.backend, it.stage, it.code, it.lesson,
                    json.dumps(it.outcome), None if it.reward is None else float(it.reward), parent, it.run_id,
                    int(bool(it.feasible)), None if it.latency_ms is None else float(it.latency_ms),
                    json.dumps(it.meta), source_hash, json.dumps(list(it.keywords)),
                    time.time() if row.created is None else float(row.created),
                    float(q[0]), float(q[1]), int(q[2]), int(q[3]), _blob(row.embedding),
                ),
            )  # fmt: skip
        except sqlite3.IntegrityError as exc:
            if parent is not None and "FOREIGN KEY" in str(exc):
                raise UserError(f"parent item {parent} does not exist in {self.path}") from exc
            raise
        except TypeError as exc:  # outcome/meta not JSON-serialisable
            raise UserError(f"item fields must be JSON-serialisable: {exc}") from exc
        return int(cur.lastrowid)

    def items_by_id(self, ids: Sequence[int]) -> list[Item]:
        """Items in the order of ``ids`` (missing ids raise KeyError)."""
        if not ids:
            return []
        found: dict[int, Item] = {}
        unique = list(dict.fromkeys(int(i) for i in ids))
        with self.read() as conn:
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for row in conn.execute(f"SELECT {_ITEM_COLUMNS} FROM {_ITEM_FROM} WHERE items.id IN ({marks})", chunk):
                    found[row[0]] = _item_from_row(row)
        missing = [i for i in unique if i not in found]
        if missing:
            raise KeyError(f"no memory item with id {missing[0]}")
        return [found[int(i)] for i in ids]

    def query(self, where: str = "", params: Sequence[Any] = (), order: str = "items.id") -> list[Item]:
        """Items matching an SQL condition over the items table."""
        sql = f"SELECT {_ITEM_COLUMNS} FROM {_ITEM_FROM}"
        if where:
            sql += f" WHERE {where}"
        with self.read() as conn:
            return [_item_from_row(r) for r in conn.execute(f"{sql} ORDER BY {order}", tuple(params))]

    def ids(self, where: str = "", params: Sequence[Any] = ()) -> list[int]:
        """Ids of the items matching an SQL condition, ascending."""
        sql = "SELECT id FROM items" + (f" WHERE {where}" if where else "") + " ORDER BY id"
        with self.read() as conn:
            return [r[0] for r in conn.execute(sql, tuple(params))]

    def count(self) -> int:
        """Number of items."""
        with self.read() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    def index_rows(self) -> tuple[int, list[IndexRow], dict[str, tuple[int, float, float]]]:
        """The generation, every item's id, tags, Q values and embedding (by id) and the reward statistics,
        read in one transaction (one consistent state)."""
        with self.read_view() as conn:
            generation = int(conn.execute("SELECT generation FROM state WHERE id = 0").fetchone()[0])
            rows = [
                IndexRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], np.frombuffer(r[7], dtype=np.float32))
                for r in conn.execute(
                    "SELECT id, kind, backend, q_draft, q_refine, visits_draft, visits_refine, embedding "
                    "FROM items ORDER BY id"
                )
            ]
            stats = {s: (int(c), float(m), float(v)) for s, c, m, v in conn.execute("SELECT * FROM reward_stats")}
        return generation, rows, stats

    def embeddings(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """Stored embeddings of some items."""
        out: dict[int, np.ndarray] = {}
        with self.read() as conn:
            for start in range(0, len(ids), 500):
                chunk = [int(i) for i in ids[start : start + 500]]
                marks = ",".join("?" * len(chunk))
                for i, blob in conn.execute(f"SELECT id, embedding FROM items WHERE id IN ({marks})", chunk):
                    out[i] = np.frombuffer(blob, dtype=np.float32).copy()
        return out

    def source_embedding(self, source_hash: str) -> np.ndarray | None:
        """The cached program embedding of a stored source, if any."""
        with self.read() as conn:
            row = conn.execute("SELECT embedding FROM sources WHERE hash = ?", (source_hash,)).fetchone()
        return None if row is None or row[0] is None else np.frombuffer(row[0], dtype=np.float32).copy()

    def set_embeddings(self, vectors: dict[int, np.ndarray], sources: dict[str, np.ndarray]) -> None:
        """Replace item embeddings and source embedding caches in one transaction (re-embedding)."""
        with self.write() as conn:
            conn.execute("UPDATE sources SET embedding = NULL")
            conn.executemany(
                "UPDATE sources SET embedding = ? WHERE hash = ?", [(_blob(v), h) for h, v in sources.items()]
            )
            conn.executemany("UPDATE items SET embedding = ? WHERE id = ?", [(_blob(v), i) for i, v in vectors.items()])

    def set_q(self, ids: Sequence[int], stage: str, q: Sequence[float], visits: Sequence[int]) -> None:
        """Persist Q values and visit counts of one stage (one transaction unless one is open)."""
        check_stage(stage)
        sql = f"UPDATE items SET q_{stage} = ?, visits_{stage} = ? WHERE id = ?"
        with self.write() as conn:
            conn.executemany(sql, [(float(a), int(b), int(i)) for i, a, b in zip(ids, q, visits)])

    def delete(self, ids: Iterable[int]) -> int:
        """Delete items (children keep living with parent_id NULL) and sources no item uses; one transaction."""
        ids = [int(i) for i in ids]
        with self.write() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                conn.execute(f"DELETE FROM items WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            conn.execute(
                "DELETE FROM sources WHERE hash NOT IN (SELECT source_hash FROM items WHERE source_hash IS NOT NULL)"
            )
        return len(ids)

    # -- reward statistics and runs ----------------------------------------------------------

    def reward_stats(self) -> dict[str, tuple[int, float, float]]:
        """Per stage: (count, mean, var) of the running reward statistics."""
        with self.read() as conn:
            return {s: (int(c), float(m), float(v)) for s, c, m, v in conn.execute("SELECT * FROM reward_stats")}

    def set_reward_stats(self, stage: str, count: int, mean: float, var: float) -> None:
        """Persist one stage's running reward statistics."""
        check_stage(stage)
        with self.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO reward_stats (stage, count, mean, var) VALUES (?, ?, ?, ?)",
                (stage, int(count), float(mean), float(var)),
            )

    def add_run(self, run_id: str, config: dict[str, Any], started: float | None = None) -> None:
        """Record the start of a run."""
        with self.write() as conn:
            conn.execute(
                "INSERT INTO runs (id, started, config) VALUES (?, ?, ?)",
                (run_id, time.time() if started is None else started, json.dumps(config)),
            )

    def end_run(self, run_id: str, summary: dict[str, Any]) -> None:
        """Record the end of a run and its summary."""
        with self.write() as conn:
            cur = conn.execute(
                "UPDATE runs SET ended = ?, summary = ? WHERE id = ?", (time.time(), json.dumps(summary), run_id)
            )
            if cur.rowcount == 0:
                raise KeyError(f"no run with id {run_id!r}")

    def runs(self) -> list[dict[str, Any]]:
        """Every recorded run, oldest first."""
        with self.read() as conn:
            rows = conn.execute("SELECT id, started, ended, config, summary FROM runs ORDER BY started, id").fetchall()
        return [
            {"id": r[0], "started": r[1], "ended": r[2], "config": json.loads(r[3]),
             "summary": None if r[4] is None else json.loads(r[4])}
            for r in rows
        ]  # fmt: skip

    def merge_runs(self, runs: Sequence[dict[str, Any]]) -> None:
        """Add runs recorded elsewhere (runs already present are kept as they are)."""
        with self.write() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO runs (id, started, ended, config, summary) VALUES (?, ?, ?, ?, ?)",
                [
                    (str(r["id"]), float(r["started"]), r.get("ended"), json.dumps(r.get("config") or {}),
                     None if r.get("summary") is None else json.dumps(r["summary"]))
                    for r in runs
                ],
            )  # fmt: skip

    def content_keys(self) -> dict[str, int]:
        """A content key per item (see ``content_key``) -> its id, to skip duplicates on import and merge."""
        with self.read() as conn:
            rows = conn.execute(
                "SELECT id, kind, task_id, backend, stage, lesson, code, created FROM items ORDER BY id"
            ).fetchall()
        return {content_key(k, t, b, s, l, c, cr): i for i, k, t, b, s, l, c, cr in rows}

    def counts(self) -> dict[str, Any]:
        """Item counts by kind, backend and stage, and task/feasible counts (one read transaction)."""
        with self.read_view() as conn:
            out = {
                "items": conn.execute("SELECT COUNT(*) FROM items").fetchone()[0],
                "by_kind": dict(conn.execute("SELECT kind, COUNT(*) FROM items GROUP BY kind ORDER BY kind")),
                "by_backend": dict(
                    conn.execute("SELECT backend, COUNT(*) FROM items GROUP BY backend ORDER BY backend")
                ),
                "by_stage": dict(
                    conn.execute(
                        "SELECT stage, COUNT(*) FROM items WHERE kind = 'experience' GROUP BY stage ORDER BY stage"
                    )
                ),
                "tasks": conn.execute(
                    "SELECT COUNT(DISTINCT task_id) FROM items WHERE kind = 'experience'"
                ).fetchone()[0],
                "feasible": conn.execute(
                    "SELECT COUNT(*) FROM items WHERE kind = 'experience' AND feasible = 1"
                ).fetchone()[0],
                "tasks_solved": conn.execute(
                    "SELECT COUNT(DISTINCT task_id) FROM items WHERE kind = 'experience' AND feasible = 1"
                ).fetchone()[0],
                "runs": conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0],
            }
        return out
