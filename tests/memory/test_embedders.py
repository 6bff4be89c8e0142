"""Embedders: the structural default (deterministic, meaningful neighbours) and the LiteLLM one
against a tiny local OpenAI-compatible server (never the network)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from evokernel.errors import UserError
from evokernel.memory.embedders import (
    LiteLLMEmbedder,
    StructuralEmbedder,
    embedder_from_name,
    embedder_from_spec,
    embedder_spec,
)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def vectors(programs) -> dict[str, np.ndarray]:
    emb = StructuralEmbedder()
    return {name: emb.embed_program(src) for name, src in programs.items()}


def test_shape_dtype_norm(vectors) -> None:
    for vec in vectors.values():
        assert vec.shape == (256,) and vec.dtype == np.float32
        assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-5)


def test_similar_programs_are_closer_than_unrelated_ones(vectors) -> None:
    assert _cos(vectors["softmax"], vectors["log_softmax"]) > _cos(vectors["softmax"], vectors["conv2d"])
    assert _cos(vectors["relu"], vectors["leaky_relu"]) > _cos(vectors["relu"], vectors["conv2d"])
    assert _cos(vectors["relu"], vectors["leaky_relu"]) > _cos(vectors["relu"], vectors["matmul"])
    assert _cos(vectors["log_softmax"], vectors["softmax"]) > _cos(vectors["log_softmax"], vectors["leaky_relu"])


def test_text_lands_near_the_program_it_is_about(vectors) -> None:
    emb = StructuralEmbedder()
    note = emb.embed_text("Softmax: subtract the row max before exp; one pass per row (online softmax)")
    assert _cos(note, vectors["softmax"]) > _cos(note, vectors["conv2d"])
    conv_note = emb.embed_text("Conv2d as implicit GEMM: tile output channels, unroll the kernel window")
    assert _cos(conv_note, vectors["conv2d"]) > _cos(conv_note, vectors["relu"])


def test_deterministic_across_processes(programs, vectors) -> None:
    code = (
        "import sys, json; from evokernel.memory.embedders import StructuralEmbedder as E; e = E(); "
        "src = json.load(sys.stdin); "
        "print(e.embed_program(src).tobytes().hex()); print(e.embed_text('online softmax tiling').tobytes().hex())"
    )
    seed = "54321" if os.environ.get("PYTHONHASHSEED") != "54321" else "1"  # a hash seed unlike ours
    res = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(programs["softmax"]), capture_output=True, text=True,
        env={**os.environ, "PYTHONHASHSEED": seed}, timeout=300, check=True,
    )  # fmt: skip
    program_hex, text_hex = res.stdout.split()
    assert program_hex == vectors["softmax"].tobytes().hex()
    assert text_hex == StructuralEmbedder().embed_text("online softmax tiling").tobytes().hex()


def test_unloadable_sources_and_empty_text_still_embed() -> None:
    emb = StructuralEmbedder()
    broken = emb.embed_program("def forward(:\n  softmax")  # syntax error: embedded as text
    assert broken.shape == (256,) and np.any(broken)
    empty = emb.embed_text("")
    assert np.linalg.norm(empty) == pytest.approx(1.0, abs=1e-5)


def test_specs_and_names() -> None:
    emb = StructuralEmbedder()
    assert embedder_from_spec(embedder_spec(emb)).name == emb.name
    assert isinstance(embedder_from_name("structural"), StructuralEmbedder)
    lite = embedder_from_name("litellm:openai/x", api_base="http://127.0.0.1:1/v1")
    assert isinstance(lite, LiteLLMEmbedder) and lite.name == "litellm:openai/x"
    with pytest.raises(UserError, match="unknown embedder"):
        embedder_from_name("word2vec")
    with pytest.raises(UserError, match="pass that embedder"):
        embedder_from_spec({"name": "custom", "dim": 3})


# -- LiteLLM against a local OpenAI-compatible server ------------------------------------------

_DIM = 16


def _server_vector(text: str) -> list[float]:
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=_DIM).digest()
    return [b / 255.0 - 0.5 for b in digest]


class _Handler(BaseHTTPRequestHandler):
    requests: list[dict] = []
    fail = False

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "body": body})
        if type(self).fail or not self.path.endswith("/embeddings"):
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "boom", "type": "server_error"}}')
            return
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = []
        for i, text in enumerate(inputs):
            vec = _server_vector(text)
            if body.get("encoding_format") == "base64":
                emb: object = base64.b64encode(np.asarray(vec, dtype="<f4").tobytes()).decode()
            else:
                emb = vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
        payload = json.dumps({
            "object": "list", "data": data, "model": body.get("model"),
            "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
        }).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def embedding_server() -> Iterator[type[_Handler]]:
    """An OpenAI-compatible /v1/embeddings server on 127.0.0.1 in a thread; yields the handler class."""
    handler = type("Handler", (_Handler,), {"requests": [], "fail": False})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.base = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _lite(server: type[_Handler], **kw: object) -> LiteLLMEmbedder:
    return LiteLLMEmbedder("openai/tiny-embed", api_base=server.base, api_key="sk-local-test", **kw)


def test_litellm_embedder_against_local_server(embedding_server, programs) -> None:
    emb = _lite(embedding_server)
    assert emb.dim == _DIM  # probed once
    vec = emb.embed_text("online softmax")
    np.testing.assert_allclose(vec, _server_vector("online softmax"), rtol=1e-6)
    prog = emb.embed_program(programs["relu"])
    np.testing.assert_allclose(prog, _server_vector(programs["relu"]), rtol=1e-6)
    both = emb.embed_texts(["a", "b"])
    np.testing.assert_allclose(both[1], _server_vector("b"), rtol=1e-6)
    assert all(r["path"] == "/v1/embeddings" for r in embedding_server.requests)
    assert {r["body"]["model"] for r in embedding_server.requests} == {"tiny-embed"}
    assert embedder_spec(emb) == {
        "name": "litellm:openai/tiny-embed", "dim": _DIM, "type": "litellm", "model": "openai/tiny-embed",
        "api_base": embedding_server.base,
    }  # fmt: skip


def test_litellm_failures_are_one_line_user_errors(embedding_server) -> None:
    embedding_server.fail = True
    with pytest.raises(UserError, match="tiny-embed") as info:
        _lite(embedding_server, dim=_DIM).embed_text("x")
    assert "\n" not in str(info.value)
    embedding_server.fail = False
    with pytest.raises(UserError, match="dimension"):
        _lite(embedding_server, dim=_DIM + 1).embed_text("x")
