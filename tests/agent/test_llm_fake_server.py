"""The scripted OpenAI-compatible server in tests/fakes behaves like one (plain HTTP and litellm)."""

from __future__ import annotations

import asyncio
import json
import math
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:  # tests/ is no package (--import-mode=importlib): make `fakes` importable
    sys.path.insert(0, _TESTS)

from fakes.openai_server import Error, FakeOpenAIServer, Reply, openai_server  # noqa: E402, F401


def post(url: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def test_script_order_usage_and_records(openai_server: FakeOpenAIServer) -> None:
    openai_server.push(Reply("one two three", prompt_tokens=5), Error(429, "slow"))
    body = {"model": "m", "messages": [{"role": "user", "content": "a b"}]}
    status, reply = post(f"{openai_server.url}/chat/completions", body)
    assert status == 200
    assert reply["choices"][0]["message"]["content"] == "one two three"
    assert reply["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    status, reply = post(f"{openai_server.url}/chat/completions", body)
    assert status == 429 and reply["error"]["message"] == "slow"
    status, reply = post(f"{openai_server.url}/chat/completions", body)
    assert status == 500 and "script exhausted" in reply["error"]["message"]
    assert [r.answer for r in openai_server.requests] == ["reply", "error 429", "error 500"]
    assert openai_server.chat_bodies == [body] * 3
    assert openai_server.pending == 0


def test_embeddings_are_deterministic_unit_vectors(openai_server: FakeOpenAIServer) -> None:
    url = f"{openai_server.url}/embeddings"
    _, first = post(url, {"model": "e", "input": ["softmax kernel", "relu"]})
    _, again = post(url, {"model": "e", "input": "softmax kernel", "dimensions": 8})
    vectors = [item["embedding"] for item in first["data"]]
    assert len(vectors) == 2 and all(len(v) == openai_server.embedding_dim for v in vectors)
    assert all(math.isclose(math.fsum(x * x for x in v), 1.0) for v in vectors)
    assert again["data"][0]["embedding"] == vectors[0] and vectors[0] != vectors[1]


def test_embeddings_through_litellm(openai_server: FakeOpenAIServer) -> None:
    import litellm

    from evokernel.agent.llm import close_litellm_clients

    async def go() -> Any:
        try:
            return await litellm.aembedding(
                model="openai/text-embedding-3-small",
                input=["softmax kernel", "relu"],
                api_base=openai_server.url,
                api_key="sk-test",
            )
        finally:
            await close_litellm_clients()

    first, second = asyncio.run(go()), asyncio.run(go())
    vectors = [item["embedding"] for item in first.data]
    assert len(vectors) == 2 and len(vectors[0]) == 8
    assert vectors == [item["embedding"] for item in second.data]
    for got, text in zip(vectors, ["softmax kernel", "relu"]):
        _, direct = post(f"{openai_server.url}/embeddings", {"model": "e", "input": text})
        assert got == pytest.approx(direct["data"][0]["embedding"], abs=1e-6)


def test_close_wakes_stalled_requests() -> None:
    server = FakeOpenAIServer(Reply("late", delay_s=60)).start()
    url = f"{server.url}/chat/completions"
    result: dict[str, Any] = {}

    def call() -> None:
        try:
            post(url, {"model": "m", "messages": []})
        except Exception as exc:  # the connection is dropped on close
            result["error"] = type(exc).__name__

    thread = threading.Thread(target=call)
    thread.start()
    while not server.requests:
        threading.Event().wait(0.01)
    server.close()
    thread.join(timeout=10)
    assert not thread.is_alive() and "error" in result
