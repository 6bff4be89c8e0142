"""LLMClient through litellm against the scripted OpenAI-compatible server in tests/fakes."""

from __future__ import annotations

import asyncio
import json
import math
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:  # tests/ is no package (--import-mode=importlib): make `fakes` importable
    sys.path.insert(0, _TESTS)

from fakes.openai_server import (  # noqa: E402
    Error,
    FakeOpenAIServer,
    Raw,
    Reply,
    empty_choices,
    openai_server,  # noqa: F401 - registers the fixture in this module
    stall,
)

from evokernel.agent.llm import (  # noqa: E402
    Completion,
    LLMClient,
    LLMSettings,
    LLMStopError,
    UsageLedger,
)
from evokernel.errors import UserError  # noqa: E402

KEY = "sk-test-key"


@pytest.fixture(autouse=True)
def _fake_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def settings_for(server: FakeOpenAIServer, **overrides: Any) -> LLMSettings:
    values: dict[str, Any] = {
        "model": "openai/test-model",
        "api_base": server.url,
        "timeout_s": 5.0,
        "max_retries": 2,
        "backoff_base_s": 0.001,
        "backoff_max_s": 0.004,
    }
    values.update(overrides)
    return LLMSettings(**values)


def complete(settings: LLMSettings, messages: Any = "write a kernel", **kwargs: Any) -> Completion:
    """One completion on a fresh event loop, closing litellm's clients afterwards."""

    async def go() -> Completion:
        async with LLMClient(settings) as client:
            return await client.complete(messages, **kwargs)

    return asyncio.run(go())


def complete_many(client: LLMClient, prompts: list[Any], **kwargs: Any) -> list[Completion]:
    async def go() -> list[Completion]:
        try:
            return list(await asyncio.gather(*(client.complete(p, **kwargs) for p in prompts)))
        finally:
            await client.aclose()

    return asyncio.run(go())


PYTHON_REPLY = "Here is the kernel:\n```python\nimport triton\n\nclass ModelNew:\n    pass\n```\nDone."


# --------------------------------------------------------------------------- success and accounting
def test_success_returns_text_code_and_usage(openai_server: FakeOpenAIServer) -> None:
    openai_server.push(Reply(PYTHON_REPLY, prompt_tokens=11, completion_tokens=7))
    settings = settings_for(openai_server)
    ledger = UsageLedger()

    async def go() -> Completion:
        async with LLMClient(settings, ledger=ledger) as client:
            return await client.complete("write a relu kernel", seed=5)

    result = asyncio.run(go())
    assert result.ok and result.error is None
    assert result.text == PYTHON_REPLY
    assert result.code == "import triton\n\nclass ModelNew:\n    pass\n"
    assert (result.tokens_in, result.tokens_out, result.attempts) == (11, 7, 1)
    assert result.cached is False and result.finish_reason == "stop"
    assert result.cost_usd == 0.0 and result.price_known is False  # unknown model: no price
    assert result.prompt_chars == len("write a relu kernel")
    assert result.accounting() == {
        "prompt_chars": 19,
        "reply_chars": len(PYTHON_REPLY),
        "tokens_in": 11,
        "tokens_out": 7,
        "cost_usd": 0.0,
        "cached": False,
    }
    usage = ledger.to_dict()["models"]["openai/test-model"]
    assert usage["tokens_in"] == 11 and usage["tokens_out"] == 7
    assert usage["requests"] == 1 and usage["provider_calls"] == 1
    assert usage["price"] == "unknown" and usage["cost_usd"] == 0.0
    assert "unknown price" in ledger.summary()
    record = result.to_dict()
    assert json.loads(json.dumps(record)) == record and "text" not in record

    (request,) = openai_server.requests
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.body["model"] == "test-model"
    assert request.body["messages"] == [{"role": "user", "content": "write a relu kernel"}]
    assert request.body["temperature"] == 0.7 and request.body["seed"] == 5


def test_known_model_is_priced_by_litellm(openai_server: FakeOpenAIServer) -> None:
    import litellm

    openai_server.push(Reply("```python\nx = 1\n```", prompt_tokens=1000, completion_tokens=500))
    result = complete(settings_for(openai_server, model="openai/gpt-4o-mini"))
    prompt_cost, completion_cost = litellm.cost_per_token(
        model="gpt-4o-mini", prompt_tokens=1000, completion_tokens=500
    )
    assert result.price_known is True
    assert result.cost_usd == pytest.approx(prompt_cost + completion_cost)
    assert result.cost_usd > 0


def test_chat_messages_sampling_and_extra_arguments_are_sent(openai_server: FakeOpenAIServer) -> None:
    openai_server.push("ok")
    messages = [
        {"role": "system", "content": "You write Triton kernels."},
        {"role": "user", "content": "softmax please"},
    ]
    settings = settings_for(openai_server, temperature=0.2, top_p=0.9, max_tokens=123, extra={"stop": ["END"]})
    result = complete(settings, messages, seed=9, temperature=0.1)
    assert result.text == "ok"
    body = openai_server.chat_bodies[0]
    assert body["messages"] == messages
    assert body["temperature"] == 0.1  # per-call override
    assert body["top_p"] == 0.9 and body["max_tokens"] == 123 and body["seed"] == 9
    assert body["stop"] == ["END"]


def test_seed_is_not_sent_when_disabled(openai_server: FakeOpenAIServer) -> None:
    openai_server.push("ok")
    complete(settings_for(openai_server, send_seed=False, temperature=None), seed=3)
    body = openai_server.chat_bodies[0]
    assert "seed" not in body and "temperature" not in body


# --------------------------------------------------------------------------- code extraction
@pytest.mark.parametrize(
    ("reply", "code"),
    [
        ("```python\nprint(1)\n```", "print(1)\n"),
        ("text\n```\nplain = True\n```\nmore", "plain = True\n"),
        ("no code here, sorry", None),
        (
            "```bash\npip install triton triton-extra things\n```\n```python\nx = 1\n```",
            "x = 1\n",
        ),
        (
            "```python\nsnippet()\n```\nfull:\n```python\nimport triton\nfull_program()\n```",
            "import triton\nfull_program()\n",
        ),
        ("```\nshort\n```\n```text\na much longer block of text\n```", "a much longer block of text\n"),
    ],
    ids=["python-fence", "plain-fence", "no-fence", "python-preferred", "largest-python", "largest-any"],
)
def test_code_is_extracted_from_the_reply(
    openai_server: FakeOpenAIServer, reply: str, code: str | None
) -> None:
    openai_server.push(reply)
    result = complete(settings_for(openai_server))
    assert result.ok and result.code == code
    if code is None:
        assert result.no_code_reason() == "the reply has no fenced code block (expected ```python ... ```)"
    else:
        assert result.no_code_reason() is None


def test_truncated_reply_says_so(openai_server: FakeOpenAIServer) -> None:
    openai_server.push(Reply("```python\nimport triton\ndef kern", finish_reason="length"))
    result = complete(settings_for(openai_server))
    assert result.ok and result.code is None
    assert "cut off at max_tokens" in (result.no_code_reason() or "")


# --------------------------------------------------------------------------- retries
def test_rate_limit_is_retried_with_growing_seeded_backoff(openai_server: FakeOpenAIServer) -> None:
    openai_server.push(Error(429, "slow down"), Error(429, "slow down"), "```python\nok = 1\n```")
    settings = settings_for(openai_server, max_retries=3, backoff_base_s=0.5, backoff_max_s=10.0)
    delays: list[float] = []

    async def record(delay: float) -> None:
        delays.append(delay)

    async def go() -> Completion:
        async with LLMClient(settings, sleep=record) as client:
            return await client.complete("kernel", seed=1)

    result = asyncio.run(go())
    assert result.ok and result.code == "ok = 1\n" and result.attempts == 3
    assert len(openai_server.requests) == 3
    assert len(delays) == 2
    assert 0.25 <= delays[0] <= 0.5 and 0.5 <= delays[1] <= 1.0  # base * 2**k, up to half jittered
    # the same request with the same jitter seed waits the same
    openai_server.push(Error(429), Error(429), "again")
    first = list(delays)
    delays.clear()
    asyncio.run(go())
    assert delays == first


def test_retry_after_header_is_respected(openai_server: FakeOpenAIServer) -> None:
    openai_server.push(Error(429, "wait", headers={"Retry-After": "3"}), "ok")
    delays: list[float] = []

    async def record(delay: float) -> None:
        delays.append(delay)

    async def go() -> Completion:
        async with LLMClient(settings_for(openai_server, backoff_max_s=5.0), sleep=record) as client:
            return await client.complete("x")

    assert asyncio.run(go()).ok
    assert delays == [3.0]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried(openai_server: FakeOpenAIServer, status: int) -> None:
    openai_server.push(Error(status), "recovered")
    result = complete(settings_for(openai_server))
    assert result.ok and result.text == "recovered" and result.attempts == 2


def test_persistent_server_error_gives_a_failed_result(openai_server: FakeOpenAIServer) -> None:
    openai_server.push(*[Error(500, "upstream exploded")] * 3)
    ledger = UsageLedger()

    async def go() -> Completion:
        async with LLMClient(settings_for(openai_server, max_retries=2), ledger=ledger) as client:
            return await client.complete("x")

    result = asyncio.run(go())
    assert result.text is None and result.code is None and not result.ok
    assert result.error == "server error (500): upstream exploded (gave up after 3 attempts)"
    assert result.no_code_reason() == result.error
    assert result.attempts == 3 and result.status == 500
    assert len(openai_server.requests) == 3 and openai_server.pending == 0
    usage = ledger.usage("openai/test-model")
    assert (usage.requests, usage.failed, usage.provider_calls) == (1, 1, 3)


def test_timeout_is_retried_then_fails(openai_server: FakeOpenAIServer) -> None:
    openai_server.push(stall(30), stall(30))
    result = complete(settings_for(openai_server, timeout_s=0.3, max_retries=1))
    assert not result.ok and result.attempts == 2
    assert result.error is not None and result.error.startswith("request timed out")
    assert "gave up after 2 attempts" in result.error and "\n" not in result.error
    assert len(openai_server.requests) == 2


def test_unreachable_server_is_retried_then_fails() -> None:
    with FakeOpenAIServer() as server:
        settings = settings_for(server, max_retries=1)
    result = complete(settings)  # the server is closed: connection refused
    assert not result.ok and result.attempts == 2
    assert result.error is not None and "gave up after 2 attempts" in result.error


# --------------------------------------------------------------------------- stop the run
@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, "rejected the API key for model 'openai/test-model' (401): check OPENAI_API_KEY"),
        (403, "no access to model 'openai/test-model' (403): check that the key in OPENAI_API_KEY"),
        (404, "model 'openai/test-model' not found (404): check the model name and api_base"),
    ],
)
def test_key_and_model_errors_stop_the_run(
    openai_server: FakeOpenAIServer, status: int, expected: str
) -> None:
    openai_server.push(Error(status, "nope"))
    with pytest.raises(LLMStopError) as info:
        complete(settings_for(openai_server))
    assert isinstance(info.value, UserError) and info.value.status == status
    assert expected in str(info.value) and "\n" not in str(info.value)
    assert len(openai_server.requests) == 1  # never retried


def test_exhausted_quota_stops_the_run(openai_server: FakeOpenAIServer) -> None:
    openai_server.push(Error(429, "You exceeded your current quota", type="insufficient_quota"))
    with pytest.raises(LLMStopError, match="quota exhausted"):
        complete(settings_for(openai_server))
    assert len(openai_server.requests) == 1


def test_missing_key_stops_before_any_request(
    openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    openai_server.push("never sent")
    with pytest.raises(UserError, match=r"no API key for model 'openai/test-model': set OPENAI_API_KEY"):
        complete(settings_for(openai_server))
    assert openai_server.requests == []


def test_api_key_env_names_the_variable(
    openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    settings = settings_for(openai_server, api_key_env="EVOKERNEL_TEST_KEY")
    with pytest.raises(UserError, match="set EVOKERNEL_TEST_KEY"):
        complete(settings)
    assert openai_server.requests == []
    monkeypatch.setenv("EVOKERNEL_TEST_KEY", "sk-other")
    openai_server.push("ok")
    assert complete(settings).ok
    assert openai_server.requests[0].headers["authorization"] == "Bearer sk-other"


def test_unroutable_model_stops_before_any_request(openai_server: FakeOpenAIServer) -> None:
    with pytest.raises(LLMStopError, match="litellm cannot route model 'no-such-model-xyz'"):
        complete(settings_for(openai_server, model="no-such-model-xyz", api_base=None))
    with pytest.raises(LLMStopError, match="no model set"):
        complete(settings_for(openai_server, model=""))
    assert openai_server.requests == []


# --------------------------------------------------------------------------- failed attempts
@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (Raw("{not json"), "malformed reply from the provider"),
        (Raw("[1, 2, 3]"), "malformed reply from the provider"),
        (empty_choices(), "reply from the provider"),
        (Error(400, "bad request body"), "request rejected (400): bad request body"),
    ],
    ids=["malformed-json", "not-an-object", "empty-choices", "bad-request"],
)
def test_bad_replies_fail_the_attempt_without_retry(
    openai_server: FakeOpenAIServer, item: Any, reason: str
) -> None:
    openai_server.push(item)
    result = complete(settings_for(openai_server))
    assert result.text is None and result.error is not None
    assert reason in result.error and "\n" not in result.error and "Traceback" not in result.error
    assert result.attempts == 1 and len(openai_server.requests) == 1


def test_empty_content_is_a_reply_without_code(openai_server: FakeOpenAIServer) -> None:
    openai_server.push(Reply(None))
    result = complete(settings_for(openai_server))
    assert result.ok and result.text == "" and result.code is None
    assert result.no_code_reason() == "the reply was empty"


# --------------------------------------------------------------------------- concurrency
def test_one_client_serves_successive_event_loops(openai_server: FakeOpenAIServer) -> None:
    openai_server.push("first", "second")
    client = LLMClient(settings_for(openai_server, max_in_flight=1))
    assert [r.text for r in complete_many(client, ["a"])] == ["first"]
    assert [r.text for r in complete_many(client, ["b"])] == ["second"]
    assert client.ledger.usage("openai/test-model").requests == 2


def test_in_flight_limit_is_respected(openai_server: FakeOpenAIServer) -> None:
    limit = 3
    barrier = threading.Barrier(limit, timeout=10)

    def respond(body: dict) -> str:
        barrier.wait()  # only passes once `limit` requests are in the server together
        return "done"

    openai_server.default = respond
    client = LLMClient(settings_for(openai_server, max_in_flight=limit))
    results = complete_many(client, [f"task {i}" for i in range(3 * limit)])
    assert all(r.ok and r.text == "done" for r in results)
    assert openai_server.max_in_flight == limit


def test_ledger_totals_are_exact_under_concurrency(openai_server: FakeOpenAIServer) -> None:
    import litellm

    def respond(body: dict) -> Reply:
        n = int(body["messages"][0]["content"].split()[-1])
        return Reply(f"reply {n}", prompt_tokens=100 + 7 * n, completion_tokens=13 * n + 1)

    openai_server.default = respond
    ledger = UsageLedger()
    client = LLMClient(settings_for(openai_server, model="openai/gpt-4o-mini", max_in_flight=8), ledger=ledger)
    n_requests = 40
    results = complete_many(client, [f"prompt number {i}" for i in range(n_requests)])
    assert [r.text for r in results] == [f"reply {i}" for i in range(n_requests)]

    usage = ledger.usage("openai/gpt-4o-mini")
    assert usage.requests == usage.provider_calls == n_requests
    assert usage.tokens_in == sum(100 + 7 * i for i in range(n_requests))
    assert usage.tokens_out == sum(13 * i + 1 for i in range(n_requests))
    assert usage.cost_usd == math.fsum(r.cost_usd for r in results)
    expected = math.fsum(
        sum(litellm.cost_per_token(model="gpt-4o-mini", prompt_tokens=100 + 7 * i, completion_tokens=13 * i + 1))
        for i in range(n_requests)
    )
    assert usage.cost_usd == pytest.approx(expected, rel=1e-12)
    assert ledger.to_dict()["total"]["price"] == "known"


def test_clients_of_one_provider_share_its_in_flight_limit(openai_server: FakeOpenAIServer) -> None:
    """Two clients, each on its own thread and event loop: together at most `limit` requests in flight."""
    limit = 2
    barrier = threading.Barrier(limit, timeout=10)

    def respond(body: dict) -> Reply:
        barrier.wait()  # passes only with `limit` requests in the server together; more would pass in two groups
        n = int(body["messages"][0]["content"].split()[-1])
        return Reply(f"reply {n}", prompt_tokens=50 + 3 * n, completion_tokens=5 * n + 2)

    openai_server.default = respond
    ledger = UsageLedger()
    settings = settings_for(openai_server, model="openai/gpt-4o-mini", max_in_flight=limit)
    clients = [LLMClient(settings, ledger=ledger) for _ in range(2)]
    per_client = 10
    results: dict[int, list[Completion]] = {}

    def run(i: int) -> None:
        results[i] = complete_many(clients[i], [f"prompt {j}" for j in range(i * per_client, (i + 1) * per_client)])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    everything = results[0] + results[1]
    assert [r.text for r in everything] == [f"reply {n}" for n in range(2 * per_client)]
    assert openai_server.max_in_flight == limit
    assert clients[0].in_flight_limit is clients[1].in_flight_limit and clients[0].in_flight_limit.in_flight == 0

    usage = ledger.usage("openai/gpt-4o-mini")
    n_requests = 2 * per_client
    assert usage.requests == usage.provider_calls == n_requests
    assert usage.tokens_in == sum(50 + 3 * n for n in range(n_requests))
    assert usage.tokens_out == sum(5 * n + 2 for n in range(n_requests))
    assert usage.cost_usd == math.fsum(r.cost_usd for r in everything) and usage.cost_usd > 0


def test_a_cancelled_waiter_does_not_lose_a_slot() -> None:
    from evokernel.agent.llm.client import ProviderLimit

    limiter = ProviderLimit()

    async def go() -> int:
        await limiter.acquire(1)
        waiter = asyncio.ensure_future(limiter.acquire(1))
        await asyncio.sleep(0.01)
        waiter.cancel()  # gives up while waiting
        limiter.release()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        async with limiter.slot(1):  # the slot is free again
            return limiter.in_flight

    assert asyncio.run(go()) == 1 and limiter.in_flight == 0


# --------------------------------------------------------------------------- reply cache
def test_identical_request_is_served_from_the_cache(openai_server: FakeOpenAIServer, tmp_path: Path) -> None:
    openai_server.default = lambda body: f"```python\nseed = {body.get('seed')}\n```"
    ledger = UsageLedger()
    settings = settings_for(openai_server, cache_path=str(tmp_path / "replies.sqlite"))

    async def go() -> list[Completion]:
        async with LLMClient(settings, ledger=ledger) as client:
            first = await client.complete("kernel please", seed=1)
            second = await client.complete("kernel please", seed=1)
            other_seed = await client.complete("kernel please", seed=2)
            other_temperature = await client.complete("kernel please", seed=1, temperature=0.3)
            return [first, second, other_seed, other_temperature]

    first, second, other_seed, other_temperature = asyncio.run(go())
    assert len(openai_server.requests) == 3  # the repeat did not reach the provider
    assert second.cached and not first.cached and not other_seed.cached and not other_temperature.cached
    assert second.text == first.text and second.code == "seed = 1\n"
    assert (second.tokens_in, second.tokens_out, second.cost_usd, second.attempts) == (0, 0, 0.0, 0)
    assert other_seed.code == "seed = 2\n"
    usage = ledger.usage("openai/test-model")
    assert usage.requests == 4 and usage.cached == 1 and usage.provider_calls == 3
    assert usage.tokens_in == first.tokens_in + other_seed.tokens_in + other_temperature.tokens_in


def test_replay_makes_no_provider_calls(
    openai_server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = str(tmp_path / "run.sqlite")
    openai_server.push("```python\nfirst = 1\n```", *[Error(500)] * 3)
    recording = settings_for(openai_server, cache_path=cache)
    recorded_ok = complete(recording, "a", seed=1)
    recorded_failure = complete(recording, "b", seed=1)
    assert recorded_ok.ok and not recorded_failure.ok
    assert len(openai_server.requests) == 4

    monkeypatch.delenv("OPENAI_API_KEY")  # a replay needs no key
    replay = settings_for(openai_server, cache_path=cache, cache_mode="replay")
    again_ok = complete(replay, "a", seed=1)
    again_failure = complete(replay, "b", seed=1)
    missing = complete(replay, "c", seed=1)
    assert again_ok.cached and again_ok.code == "first = 1\n"
    assert again_failure.cached and again_failure.error == recorded_failure.error
    assert not missing.ok and "replay cache" in (missing.error or "")
    assert len(openai_server.requests) == 4  # nothing new reached the server

    # outside replay a recorded failure is asked again (and a success replaces it)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    openai_server.push("```python\nsecond = 2\n```")
    retried = complete(recording, "b", seed=1)
    assert retried.ok and not retried.cached and retried.code == "second = 2\n"
    assert complete(replay, "b", seed=1).code == "second = 2\n"


# --------------------------------------------------------------------------- settings
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"timeout_s": 0}, "timeout_s"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_in_flight": 0}, "max_in_flight"),
        ({"jitter": 2.0}, "jitter"),
        ({"cache_mode": "sometimes"}, "cache_mode"),
        ({"cache_mode": "replay"}, "needs cache_path"),
        ({"extra": {"model": "x"}}, "extra may not set model"),
    ],
)
def test_bad_settings_raise_user_errors(overrides: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        LLMClient(LLMSettings(model="openai/x", **overrides))


def test_settings_round_trip_through_a_dict() -> None:
    settings = LLMSettings(model="anthropic/claude-x", temperature=0.1, extra={"stop": ["x"]})
    assert LLMSettings.from_dict(settings.to_dict()) == settings
    with pytest.raises(UserError, match="unknown setting"):
        LLMSettings.from_dict({"model": "x", "api_key": "sk-secret"})
