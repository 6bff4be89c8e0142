"""Fixtures of the memory tests: small reference programs and an item factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from evokernel.memory.records import NewItem

_UNARY = '''import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return {expr}


batch_size = 16
dim = 4096


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []
'''

_CONV2D = '''import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2d(x)


batch_size = 8
in_channels = 3
out_channels = 16
kernel_size = 3
height = 64
width = 64


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size]
'''

_MATMUL = '''import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.matmul(a, b)


M = 256
K = 128
N = 64


def get_inputs():
    return [torch.randn(M, K), torch.randn(K, N)]


def get_init_inputs():
    return []
'''

PROGRAMS: dict[str, str] = {
    "softmax": _UNARY.format(expr="torch.softmax(x, dim=1)"),
    "log_softmax": _UNARY.format(expr="torch.log_softmax(x, dim=1)"),
    "relu": _UNARY.format(expr="torch.relu(x)"),
    "leaky_relu": _UNARY.format(expr="torch.nn.functional.leaky_relu(x, negative_slope=0.01)"),
    "conv2d": _CONV2D,
    "matmul": _MATMUL,
}


@pytest.fixture(scope="session")
def programs() -> dict[str, str]:
    """Reference programs by short name (softmax, log_softmax, relu, leaky_relu, conv2d, matmul)."""
    return PROGRAMS


@pytest.fixture
def make_item() -> Callable[..., NewItem]:
    """Factory of experience items of a named program, every field overridable."""

    def make(task: str = "relu", **overrides: Any) -> NewItem:
        fields: dict[str, Any] = dict(
            kind="experience",
            task_id=f"level1/{task}",
            task_name=task,
            backend="cpu",
            stage="draft",
            code=f"# kernel for {task}\n",
            lesson=f"lesson about {task}",
            outcome={"status": "correct", "feasible": True},
            reward=1.0,
            parent_id=None,
            run_id=None,
            feasible=True,
            task_source=PROGRAMS[task],
        )
        fields.update(overrides)
        return NewItem(**fields)

    return make


@pytest.fixture
def make_note() -> Callable[..., NewItem]:
    """Factory of knowledge items."""

    def make(title: str, text: str, backend: str = "any", keywords: list[str] | None = None) -> NewItem:
        return NewItem(
            kind="knowledge", task_id="", task_name="", backend=backend, stage="", code=text, lesson=title,
            outcome={}, reward=None, parent_id=None, run_id=None, keywords=keywords or [],
        )  # fmt: skip

    return make


class ToyEmbedder:
    """A second, tiny embedder (dimension 8, character counts) that counts its calls."""

    name = "toy-v1"
    dim = 8

    def __init__(self) -> None:
        self.calls = 0

    def embed_text(self, text: str) -> Any:
        import numpy as np

        self.calls += 1
        vec = np.ones(self.dim, dtype=np.float32)
        for ch in text:
            vec[ord(ch) % self.dim] += 1.0
        return vec / np.linalg.norm(vec)

    def embed_program(self, source: str) -> Any:
        return self.embed_text(source)


@pytest.fixture
def toy_embedder() -> ToyEmbedder:
    """A fresh ToyEmbedder."""
    return ToyEmbedder()


@pytest.fixture
def open_memory(tmp_path) -> Any:
    """Factory ``open_memory(name="m.sqlite", **kw)`` of memories under tmp_path, closed at teardown."""
    from evokernel.memory import Memory

    opened: list[Any] = []

    def open_(name: str = "m.sqlite", **kw: Any) -> Any:
        mem = Memory.open(tmp_path / name, **kw)
        opened.append(mem)
        return mem

    yield open_
    for mem in opened:
        mem.close()
