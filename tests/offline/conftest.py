"""Helpers for the offline generator tests: build a candidate, run it against its reference."""

from __future__ import annotations

import itertools
import types
from typing import Any, Callable

import pytest
import torch

from evokernel.agent.offline.codegen import Generated, generate
from evokernel.programs import with_sizes

_counter = itertools.count()

TOL = {torch.float32: (1e-4, 1e-4), torch.float16: (1e-2, 1e-2), torch.bfloat16: (2e-2, 2e-2)}


def load_module(source: str, name: str) -> types.ModuleType:
    """Execute source in a fresh module."""
    module = types.ModuleType(f"{name}_{next(_counter)}")
    exec(compile(source, f"<{module.__name__}>", "exec"), module.__dict__)
    return module


def run_pair(
    problem: str,
    gen: Generated,
    *,
    sizes: dict[str, int] | None = None,
    inputs: list[Any] | None = None,
    seed: int = 0,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(expected, got) outputs of Model and of the generated ModelNew with the same weights."""
    ref = load_module(with_sizes(problem, sizes) if sizes else problem, "ref")
    cand = load_module(gen.source, "cand")
    torch.manual_seed(seed)
    init = ref.get_init_inputs()
    model = ref.Model(*init)
    new = cand.ModelNew(*init)
    new.load_state_dict(model.state_dict())
    xs = inputs if inputs is not None else ref.get_inputs()
    mine = [x.clone() if isinstance(x, torch.Tensor) else x for x in xs]
    with torch.no_grad():
        expected = model(*xs)
        got = new(*mine)
    for a, b in zip(xs, mine):  # the candidate must not modify its inputs
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b), "candidate modified an input"
    as_list = lambda o: list(o) if isinstance(o, (tuple, list)) else [o]  # noqa: E731
    return as_list(expected), as_list(got)


def assert_close(
    expected: list[torch.Tensor], got: list[torch.Tensor], atol: float | None = None, rtol: float | None = None
) -> None:
    """Same number, shapes and dtypes of outputs; values within the dtype's tolerance."""
    assert len(expected) == len(got)
    for e, g in zip(expected, got):
        assert g.shape == e.shape, (g.shape, e.shape)
        assert g.dtype == e.dtype, (g.dtype, e.dtype)
        a, r = TOL.get(e.dtype, (0, 0))
        a, r = (atol if atol is not None else a), (rtol if rtol is not None else r)
        if e.dtype.is_floating_point:
            torch.testing.assert_close(g, e, atol=a, rtol=r, equal_nan=True)
        else:
            assert torch.equal(g, e), (g, e)


def max_error(expected: list[torch.Tensor], got: list[torch.Tensor]) -> float:
    """Largest absolute difference over all outputs (inf on shape mismatch)."""
    worst = 0.0
    for e, g in zip(expected, got):
        if e.shape != g.shape:
            return float("inf")
        worst = max(worst, float((g.double() - e.double()).abs().max()) if e.numel() else 0.0)
    return worst


@pytest.fixture
def check() -> Callable[..., Generated]:
    """check(problem, config=None, sizes=None, inputs=None, atol=None, rtol=None) -> Generated."""

    def run(
        problem: str,
        config: dict[str, dict[str, Any]] | None = None,
        *,
        sizes: dict[str, int] | None = None,
        inputs: list[Any] | None = None,
        atol: float | None = None,
        rtol: float | None = None,
        gen: Generated | None = None,
    ) -> Generated:
        gen = gen or generate(problem, config)
        expected, got = run_pair(problem, gen, sizes=sizes, inputs=inputs)
        assert_close(expected, got, atol, rtol)
        return gen

    return run


def problem(
    forward: str, inputs: str, *, init: str = "", init_inputs: str = "[]", consts: str = "", args: str = "x"
) -> str:
    """A KernelBench-format program: module constants, Model(init) and forward(args), get_inputs."""
    init_body = init or "pass"
    return f"""import torch
import torch.nn as nn
import torch.nn.functional as F
{consts}


class Model(nn.Module):
    def __init__(self, *init_args):
        super().__init__()
        {init_body}

    def forward(self, {args}):
        return {forward}


def get_inputs():
    return {inputs}


def get_init_inputs():
    return {init_inputs}
"""


@pytest.fixture
def make_problem() -> Callable[..., str]:
    """The ``problem(forward, inputs, ...)`` builder."""
    return problem


@pytest.fixture
def pair() -> Callable[..., tuple[list[torch.Tensor], list[torch.Tensor]]]:
    """``run_pair(problem, gen, sizes=..., inputs=...)`` -> (expected, got)."""
    return run_pair


@pytest.fixture
def close() -> Callable[..., None]:
    """``assert_close(expected, got, atol=None, rtol=None)``."""
    return assert_close


@pytest.fixture
def error() -> Callable[..., float]:
    """``max_error(expected, got)``."""
    return max_error
