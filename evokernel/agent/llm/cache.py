"""An on-disk reply cache (SQLite) so a run can be replayed exactly without calling the provider.

Key: sha256 of the canonical JSON of (model, messages, temperature, top_p, max_tokens, seed, extra
litellm arguments). Successful replies are served in every mode; failed ones (retries used up, a
malformed reply) are stored too but served only when replaying, so a replay reproduces the recorded
run's failures instead of asking the provider again. The file is safe to share between processes
(WAL, busy timeout) and between threads (one connection behind a lock).

The file also keeps the verifier's input secret of the runs that use it (:meth:`ReplyCache.input_key`):
prompts carry verifier feedback (where a wrong kernel's mismatches are), so a replay asks the recorded
questions only when its candidates are checked on the same inputs. Like the memory, the file is the
user's own and never reaches a candidate.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evokernel.errors import UserError

__all__ = ["CachedReply", "ReplyCache", "request_key", "CACHE_FORMAT"]

CACHE_FORMAT = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    text TEXT,
    error TEXT,
    finish_reason TEXT,
    tokens_in INTEGER NOT NULL DEFAULT 0,
    tokens_out INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def request_key(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    temperature: float | None,
    top_p: float | None,
    max_tokens: int | None,
    seed: int | None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """The cache key (hex sha256) of one request; equal requests give equal keys in any process."""
    payload = {
        "v": CACHE_FORMAT,
        "model": model,
        "messages": [dict(m) for m in messages],
        "temperature": temperature,
        "top_p": top_p,
        "max_tokens": max_tokens,
        "seed": seed,
        "extra": dict(extra or {}),
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class CachedReply:
    """A stored reply (`text`) or a stored failure (`error`), with what the original call cost."""

    key: str
    model: str
    text: str | None
    error: str | None
    finish_reason: str | None
    tokens_in: int
    tokens_out: int
    cost_usd: float
    created: float


class ReplyCache:
    """Replies by request key in one SQLite file; thread-safe, opened lazily."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            conn: sqlite3.Connection | None = None
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
                row = conn.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
                if row is None:
                    conn.execute("INSERT INTO meta VALUES ('format', ?)", (str(CACHE_FORMAT),))
                    conn.commit()
                elif row[0] != str(CACHE_FORMAT):
                    conn.close()
                    raise UserError(
                        f"reply cache {self.path} has format {row[0]}, this version reads "
                        f"{CACHE_FORMAT}: point the cache setting at a new file"
                    )
            except (sqlite3.DatabaseError, OSError) as exc:
                if conn is not None:
                    conn.close()
                raise UserError(
                    f"reply cache {self.path} cannot be opened ({exc}): point the cache setting "
                    "at a new file"
                ) from exc
            self._conn = conn
        return self._conn

    @contextmanager
    def _using(self) -> Iterator[sqlite3.Connection]:
        """The open connection, under the lock; a SQLite error while using it (the file locked by another
        process past the busy timeout, read-only, full) is a UserError in the style of ``_connect``."""
        with self._lock:
            conn = self._connect()
            try:
                yield conn
            except sqlite3.Error as exc:
                raise UserError(
                    f"reply cache {self.path} cannot be used ({exc}): check that no other process holds it "
                    "locked and that it is writable, or point the cache setting at a new file"
                ) from exc

    def get(self, key: str) -> CachedReply | None:
        """The stored entry for `key`, or None."""
        with self._using() as conn:
            row = conn.execute(
                "SELECT key, model, text, error, finish_reason, tokens_in, tokens_out, "
                "cost_usd, created FROM replies WHERE key = ?",
                (key,),
            ).fetchone()
        return CachedReply(*row) if row else None

    def put(
        self,
        key: str,
        *,
        model: str,
        request: Mapping[str, Any],
        text: str | None,
        error: str | None = None,
        finish_reason: str | None = None,
        tokens_in: int = 0,
        tokens_out: int = 0,
        cost_usd: float = 0.0,
    ) -> None:
        """Store (or replace) the entry for `key`; a stored reply is never replaced by a failure."""
        request_json = json.dumps(request, sort_keys=True, default=str)
        with self._using() as conn:
            with conn:
                if error is not None:
                    row = conn.execute(
                        "SELECT text FROM replies WHERE key = ? AND error IS NULL", (key,)
                    ).fetchone()
                    if row is not None:
                        return
                conn.execute(
                    "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        key,
                        model,
                        request_json,
                        text,
                        error,
                        finish_reason,
                        tokens_in,
                        tokens_out,
                        cost_usd,
                        time.time(),
                    ),
                )

    def input_key(self) -> str:
        """The verifier input secret of the runs recorded here (made and stored on first use)."""
        with self._using() as conn:
            with conn:
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('input_key', ?)", (secrets.token_hex(16),))
            return str(conn.execute("SELECT value FROM meta WHERE name = 'input_key'").fetchone()[0])

    def __len__(self) -> int:
        with self._using() as conn:
            return conn.execute("SELECT COUNT(*) FROM replies").fetchone()[0]

    def close(self) -> None:
        """Close the connection (reopened on next use)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> ReplyCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
