"""The LLM client's parts on their own: ledger, reply cache, backoff, error classification."""

from __future__ import annotations

import json
import math
import random
import sqlite3
import threading
from pathlib import Path

import pytest

from evokernel.agent.llm import ReplyCache, UsageLedger, backoff_delay, classify, request_key
from evokernel.agent.llm.errors import FAIL, RETRY, STOP, one_line
from evokernel.errors import UserError


# --------------------------------------------------------------------------- ledger
def test_ledger_sums_per_model_and_in_total() -> None:
    ledger = UsageLedger()
    ledger.record("a", tokens_in=10, tokens_out=5, cost_usd=0.1, provider_calls=2, billed=True)
    ledger.record("a", cached=True)
    ledger.record("b", tokens_in=1, tokens_out=1, price_known=False, provider_calls=1, billed=True)
    ledger.record("b", failed=True, provider_calls=3)
    data = ledger.to_dict()
    assert data["models"]["a"] == {
        "requests": 2,
        "provider_calls": 2,
        "cached": 1,
        "failed": 0,
        "tokens_in": 10,
        "tokens_out": 5,
        "cost_usd": 0.1,
        "price": "known",
    }
    assert data["models"]["b"]["price"] == "unknown" and data["models"]["b"]["failed"] == 1
    assert data["total"]["requests"] == 4 and data["total"]["provider_calls"] == 6
    assert data["total"]["price"] == "partly unknown"
    assert json.loads(json.dumps(data)) == data
    assert ledger.models == ["a", "b"]
    assert "4 requests (1 cached, 1 failed)" in ledger.summary()
    assert ledger.usage("never-used").requests == 0


def test_ledger_is_exact_across_threads_in_any_order() -> None:
    costs = [random.Random(i).uniform(0, 1e-3) for i in range(2000)]
    ledger = UsageLedger()

    def work(chunk: list[float]) -> None:
        for cost in chunk:
            ledger.record("m", tokens_in=3, tokens_out=2, cost_usd=cost, provider_calls=1, billed=True)

    threads = [threading.Thread(target=work, args=(costs[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    usage = ledger.usage("m")
    assert usage.requests == 2000 and usage.tokens_in == 6000 and usage.tokens_out == 4000
    assert usage.cost_usd == math.fsum(costs) == math.fsum(reversed(costs))


# --------------------------------------------------------------------------- reply cache
def _key(seed: int | None = 1, **overrides: object) -> str:
    args: dict = {"temperature": 0.7, "top_p": None, "max_tokens": None, "seed": seed}
    args.update(overrides)
    return request_key("openai/m", [{"role": "user", "content": "hi"}], **args)


def test_request_key_covers_model_messages_sampling_and_seed() -> None:
    base = _key()
    assert base == _key() and len(base) == 64
    assert len({base, _key(seed=2), _key(seed=None), _key(temperature=0.1), _key(top_p=0.5),
                _key(max_tokens=10), _key(extra={"stop": ["x"]})}) == 7
    assert request_key("openai/other", [{"role": "user", "content": "hi"}], temperature=0.7,
                       top_p=None, max_tokens=None, seed=1) != base


def test_cache_round_trip_and_persistence(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "cache.sqlite"
    with ReplyCache(path) as cache:
        assert cache.get("k") is None
        cache.put("k", model="m", request={"seed": 1}, text="reply", finish_reason="stop",
                  tokens_in=3, tokens_out=4, cost_usd=0.5)
        cache.put("k", model="m", request={"seed": 1}, text=None, error="later failure")  # ignored
        cache.put("f", model="m", request={}, text=None, error="server error (500)")
        assert len(cache) == 2
    with ReplyCache(path) as cache:
        hit = cache.get("k")
        assert hit is not None and hit.text == "reply" and hit.error is None
        assert (hit.tokens_in, hit.tokens_out, hit.cost_usd, hit.finish_reason) == (3, 4, 0.5, "stop")
        failure = cache.get("f")
        assert failure is not None and failure.text is None and failure.error == "server error (500)"
        cache.put("f", model="m", request={}, text="recovered")  # a reply replaces a failure
        assert cache.get("f").text == "recovered"  # type: ignore[union-attr]


def test_cache_is_shared_across_threads(tmp_path: Path) -> None:
    cache = ReplyCache(tmp_path / "c.sqlite")

    def work(i: int) -> None:
        for j in range(20):
            cache.put(f"{i}-{j}", model="m", request={}, text=str(j))
            assert cache.get(f"{i}-{j}").text == str(j)  # type: ignore[union-attr]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 80
    cache.close()


def test_unreadable_cache_file_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "not-a-db.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(UserError, match="cannot be opened"):
        ReplyCache(path).get("k")
    other = tmp_path / "future.sqlite"
    ReplyCache(other).close()
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('format', '99')")
    conn.commit()
    conn.close()
    with pytest.raises(UserError, match="has format 99"):
        ReplyCache(other).get("k")


def test_a_locked_or_read_only_cache_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    cache = ReplyCache(path)
    assert cache.get("k") is None  # opened: the file and its format row exist
    assert cache._conn is not None
    cache._conn.execute("PRAGMA busy_timeout = 50")  # fail at once instead of after 30 s
    other = sqlite3.connect(path)
    other.execute("BEGIN EXCLUSIVE")  # another process writing
    try:
        with pytest.raises(UserError, match=r"reply cache .*c.sqlite cannot be used \(database is locked\)"):
            cache.input_key()
        with pytest.raises(UserError, match=r"reply cache .*c.sqlite cannot be used \(database is locked\)"):
            cache.put("k", model="m", request={}, text="reply")
    finally:
        other.rollback()
        other.close()
    cache._conn.execute("PRAGMA query_only = ON")  # what a read-only file gives: writes fail
    with pytest.raises(UserError, match=r"cannot be used \(attempt to write a readonly database\)"):
        cache.input_key()
    cache._conn.execute("PRAGMA query_only = OFF")
    key = cache.input_key()  # usable again once the writer is gone
    assert key == cache.input_key() and len(key) == 32
    cache.close()


# --------------------------------------------------------------------------- backoff
def test_backoff_doubles_up_to_the_cap_and_jitter_only_shortens() -> None:
    no_jitter = [backoff_delay(k, base_s=1, max_s=10, jitter=0, rng=random.Random(0)) for k in range(6)]
    assert no_jitter == [1, 2, 4, 8, 10, 10]
    for k in range(6):
        delay = backoff_delay(k, base_s=1, max_s=10, jitter=0.5, rng=random.Random(k))
        assert no_jitter[k] * 0.5 <= delay <= no_jitter[k]
    same = [backoff_delay(2, base_s=1, max_s=10, jitter=1, rng=random.Random("s")) for _ in range(2)]
    assert same[0] == same[1]


# --------------------------------------------------------------------------- classification
class _StatusError(Exception):
    def __init__(self, message: str, status_code: int, body: dict | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


class RateLimitError(_StatusError):
    pass


class ContextWindowExceededError(_StatusError):
    pass


@pytest.mark.parametrize(
    ("exc", "action"),
    [
        (_StatusError("bad key", 401), STOP),
        (_StatusError("forbidden", 403), STOP),
        (_StatusError("no model", 404), STOP),
        (_StatusError("pay up", 402), STOP),
        (RateLimitError("quota", 429, {"type": "insufficient_quota"}), STOP),
        (RateLimitError("slow down", 429), RETRY),
        (_StatusError("timeout", 408), RETRY),
        (_StatusError("boom", 500), RETRY),
        (_StatusError("overloaded", 529), RETRY),
        (TimeoutError(), RETRY),
        (ConnectionRefusedError("refused"), RETRY),
        (_StatusError("bad", 400), FAIL),
        (_StatusError("too large", 413), FAIL),
        (ContextWindowExceededError("too long", 400), FAIL),
        (json.JSONDecodeError("Expecting value", "x", 0), FAIL),
        (IndexError("list index out of range"), FAIL),
    ],
)
def test_classification(exc: BaseException, action: str) -> None:
    got, reason, _ = classify(exc, model="openai/m", provider="openai")
    assert got == action
    assert reason and "\n" not in reason


def test_one_line_strips_litellm_prefixes() -> None:
    text = "litellm.RateLimitError: RateLimitError: OpenAIException - slow down\nmore detail"
    assert one_line(text) == "slow down"
    assert one_line("x" * 500, limit=20) == "x" * 17 + "..."


def test_a_ledger_without_billed_replies_has_no_price() -> None:
    ledger = UsageLedger()
    ledger.record("m", cached=True)  # a replay: no provider call, nothing billed
    assert ledger.to_dict()["total"]["price"] == "not billed"
    assert ledger.to_dict()["models"]["m"]["price"] == "not billed"
    assert "no provider replies billed" in ledger.summary()
