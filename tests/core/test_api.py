"""The type stub and the compiled module describe the same API."""

from __future__ import annotations

import ast
from pathlib import Path

import evokernel
from evokernel import _core

STUB = Path(evokernel.__file__).with_name("_core.pyi")


def stub_names() -> tuple[set[str], set[str]]:
    tree = ast.parse(STUB.read_text())
    module, methods = set(), set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AnnAssign)):
            module.add(node.name if isinstance(node, ast.FunctionDef) else node.target.id)
        elif isinstance(node, ast.ClassDef) and node.name == "ExperienceIndex":
            methods |= {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
    return module, methods


def test_stub_matches_module():
    module, methods = stub_names()
    assert module == {n for n in dir(_core) if not n.startswith("__")} - {"ExperienceIndex"}
    # (pybind11 internals such as _pybind11_conduit_v1_ are not part of the API)
    compiled = {n for n in dir(_core.ExperienceIndex)
                if (not n.startswith("_") or n == "_read_floor")
                or n in ("__init__", "__len__", "__contains__")}
    assert methods == compiled


def test_docstrings_state_thread_safety():
    for name in ("add", "remove", "update_q", "set_q", "normalize_reward", "set_reward_stats",
                 "update_vector", "set_tag"):
        assert "Writer." in getattr(_core.ExperienceIndex, name).__doc__, name
    for name in ("search", "select", "get_q", "get_visits", "ids", "tag", "vector", "reward_stats"):
        assert "Reader" in getattr(_core.ExperienceIndex, name).__doc__, name
