"""A scripted OpenAI-compatible HTTP server for tests: chat completions and embeddings on 127.0.0.1.

Every chat request takes the next item of a script (a queue); when the script is empty the
`default` answers (a scripted 500 "script exhausted" error when there is none). Script items:

- `str` or `Reply(text, ...)`: a normal completion with `usage` token counts;
- `Error(status, message)`: that HTTP status with an OpenAI-style JSON error body;
- `Raw(body, status)`: bytes exactly as given (malformed JSON, empty `choices`, ...);
- any of them with `delay_s` (see `stall`): the server waits that long before answering, which
  outlasts a short client timeout; `close()` wakes waiting handlers;
- a callable `f(body: dict) -> item`: decides from the request (useful under concurrency).

Every request is recorded (`requests`, `chat_bodies`); `max_in_flight` is the largest number of chat
requests the server was handling at once. `/v1/embeddings` returns deterministic unit vectors
(a hash of each input), `/v1/models` lists the models seen so far.

Use as a context manager (`with FakeOpenAIServer("hi") as server: server.url`), or register the
`openai_server` fixture by importing it into a conftest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Union

import pytest

__all__ = [
    "Reply",
    "Error",
    "Raw",
    "stall",
    "empty_choices",
    "RecordedRequest",
    "FakeOpenAIServer",
    "openai_server",
]

CREATED = 1_700_000_000  # fixed "created" timestamp: replies are byte-for-byte reproducible


@dataclass
class Reply:
    """A successful chat completion; token counts default to word counts of prompt and reply."""

    text: str | None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str = "stop"
    delay_s: float = 0.0


@dataclass
class Error:
    """An HTTP error with an OpenAI-style body `{"error": {"message", "type", "code"}}`."""

    status: int
    message: str = ""
    type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Raw:
    """A response body sent exactly as given (e.g. malformed JSON)."""

    body: str | bytes
    status: int = 200
    content_type: str = "application/json"
    delay_s: float = 0.0


Item = Union[str, Reply, Error, Raw, Callable[[dict], Any]]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_denied",
    404: "not_found_error",
    429: "rate_limit_exceeded",
}


def stall(seconds: float, text: str = "too late") -> Reply:
    """A reply that only comes after `seconds` (longer than the client's timeout in tests)."""
    return Reply(text, delay_s=seconds)


def empty_choices() -> Raw:
    """A well-formed completion object whose `choices` list is empty."""
    body = {
        "id": "chatcmpl-empty",
        "object": "chat.completion",
        "created": CREATED,
        "model": "fake",
        "choices": [],
        "usage": {"prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1},
    }
    return Raw(json.dumps(body))


@dataclass
class RecordedRequest:
    """One request as the server saw it; `body` is the parsed JSON (None if it was not JSON)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    answer: str = ""  # what the server sent back: "reply", "error 429", "raw 200", "embeddings", ...


def _words(value: Any) -> int:
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_words(v) for v in value)
    if isinstance(value, dict):
        return _words(value.get("content", value.get("text", "")))
    return 0


def _vector(text: str, dim: int) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    rng = random.Random(seed)
    values = [rng.gauss(0.0, 1.0) for _ in range(dim)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


class FakeOpenAIServer:
    """A scripted OpenAI-compatible server in a background thread on an ephemeral local port."""

    def __init__(
        self,
        *script: Item,
        default: Item | None = None,
        embedding_dim: int = 8,
    ) -> None:
        self.default = default
        self.embedding_dim = embedding_dim
        self._script: deque[Item] = deque(script)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._requests: list[RecordedRequest] = []
        self._in_flight = 0
        self._max_in_flight = 0
        self._sockets: set[socket.socket] = set()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- script and records
    def push(self, *items: Item) -> None:
        """Append items to the script."""
        with self._lock:
            self._script.extend(items)

    @property
    def pending(self) -> int:
        """Script items not used yet."""
        with self._lock:
            return len(self._script)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def chat_bodies(self) -> list[dict]:
        """The JSON bodies of the chat-completion requests so far."""
        return [r.body for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def max_in_flight(self) -> int:
        """The most chat requests handled at the same time."""
        with self._lock:
            return self._max_in_flight

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """The `api_base` to give an OpenAI-compatible client (ends in /v1)."""
        return f"http://127.0.0.1:{self.port}/v1"

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> FakeOpenAIServer:
        """Bind an ephemeral port on 127.0.0.1 and serve in a daemon thread."""
        if self._httpd is not None:
            return self
        handler = type("Handler", (_Handler,), {"fake": self})
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, wake stalled handlers and drop open connections."""
        if self._httpd is None:
            return
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- answering
    def _next_item(self, body: dict) -> Item:
        with self._lock:
            item = self._script.popleft() if self._script else self.default
        if item is None:
            return Error(500, "fake server: script exhausted", type="server_error")
        while callable(item) and not isinstance(item, (Reply, Error, Raw)):
            item = item(body)
        return item

    def _chat(self, body: dict) -> tuple[int, dict[str, str], bytes, float, str]:
        item = self._next_item(body)
        if isinstance(item, str):
            item = Reply(item)
        if isinstance(item, Error):
            error = {
                "message": item.message or f"fake error {item.status}",
                "type": item.type or _ERROR_TYPES.get(item.status, "server_error"),
                "param": None,
                "code": None,
            }
            payload = json.dumps({"error": error}).encode()
            headers = {"Content-Type": "application/json", **item.headers}
            return item.status, headers, payload, item.delay_s, f"error {item.status}"
        if isinstance(item, Raw):
            payload = item.body.encode() if isinstance(item.body, str) else item.body
            headers = {"Content-Type": item.content_type}
            return item.status, headers, payload, item.delay_s, f"raw {item.status}"
        if not isinstance(item, Reply):
            raise TypeError(f"unknown script item {item!r}")
        prompt = item.prompt_tokens
        if prompt is None:
            prompt = max(1, _words(body.get("messages", [])))
        completion = item.completion_tokens
        if completion is None:
            completion = _words(item.text or "")
        with self._lock:
            number = len(self._requests)
        reply = {
            "id": f"chatcmpl-fake-{number}",
            "object": "chat.completion",
            "created": CREATED,
            "model": body.get("model", "fake"),
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": item.text},
                    "finish_reason": item.finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
        payload = json.dumps(reply).encode()
        return 200, {"Content-Type": "application/json"}, payload, item.delay_s, "reply"

    def _embeddings(self, body: dict) -> bytes:
        inputs = body.get("input", [])
        if isinstance(inputs, str) or (inputs and isinstance(inputs[0], int)):
            inputs = [inputs]
        dim = int(body.get("dimensions") or self.embedding_dim)
        data = []
        tokens = 0
        for index, value in enumerate(inputs):
            text = value if isinstance(value, str) else json.dumps(value)
            tokens += max(1, len(text.split()))
            vector = _vector(text, dim)
            if body.get("encoding_format") == "base64":
                packed = struct.pack(f"<{dim}f", *vector)
                embedding: Any = base64.b64encode(packed).decode()
            else:
                embedding = vector
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        reply = {
            "object": "list",
            "data": data,
            "model": body.get("model", "fake"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return json.dumps(reply).encode()

    def _models(self) -> bytes:
        names = sorted(
            {r.body.get("model", "") for r in self.requests if isinstance(r.body, dict)} - {""}
        )
        data = [{"id": n, "object": "model", "created": CREATED, "owned_by": "fake"} for n in names]
        return json.dumps({"object": "list", "data": data}).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real providers do
    fake: FakeOpenAIServer  # set on the per-server subclass
    timeout = 30  # an idle keep-alive connection ends its thread eventually

    def setup(self) -> None:
        super().setup()
        with self.fake._lock:
            self.fake._sockets.add(self.connection)

    def finish(self) -> None:
        with self.fake._lock:
            self.fake._sockets.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base-class signature
        pass  # keep test output clean

    def _record(self, body: Any) -> RecordedRequest:
        record = RecordedRequest(self.command, self.path, dict(self.headers.items()), body)
        with self.fake._lock:
            self.fake._requests.append(record)
        return record

    def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except OSError:  # the client gave up (timeout) or the server is closing
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._record(None)
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, {"Content-Type": "application/json"}, self.fake._models())
        else:
            self._send(404, {"Content-Type": "application/json"}, b'{"error": {"message": "no route"}}')

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = self._record(body)
        fake = self.fake
        if self.path.rstrip("/").endswith("/embeddings"):
            record.answer = "embeddings"
            self._send(200, {"Content-Type": "application/json"}, fake._embeddings(body or {}))
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            record.answer = "error 404"
            self._send(404, {"Content-Type": "application/json"}, b'{"error": {"message": "no route"}}')
            return
        with fake._lock:
            fake._in_flight += 1
            fake._max_in_flight = max(fake._max_in_flight, fake._in_flight)
        try:
            status, headers, payload, delay_s, answer = fake._chat(body if isinstance(body, dict) else {})
            record.answer = answer
            if delay_s > 0:
                fake._stop.wait(delay_s)
            if fake._stop.is_set():
                self.close_connection = True
                return
            self._send(status, headers, payload)
        finally:
            with fake._lock:
                fake._in_flight -= 1


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAIServer]:
    """A started FakeOpenAIServer with an empty script; `push` what the test needs."""
    with FakeOpenAIServer() as server:
        yield server

