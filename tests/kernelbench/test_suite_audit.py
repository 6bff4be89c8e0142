"""Every built-in problem runs at interpreter sizes, and degenerate outputs cannot pass it.

Two layers:
- direct: the reference's own outputs at CPU sizes (fitted by the verifier's sizing) are compared
  with zeros, a constant (the output mean of another input draw) and the first input copied into
  the output's shape, with the verifier's tolerances: none may match on any draw;
- through the verifier (slow): the same three degenerate candidates written as real Triton kernels
  are verified against every problem and must not come out ``correct``.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
import torch

from evokernel.programs import load_program
from evokernel.verify.settings import tolerance_for
from evokernel.verify.sizing import fit_problem
from kernelbench.loader import load_suite
from kernelbench.problem import Problem

PROBLEMS = load_suite("builtin")
IDS = [p.id for p in PROBLEMS]
SEEDS = (0, 1, 2)


def reference_outputs(problem: Problem, seeds: tuple[int, ...] = SEEDS) -> tuple[list[list[Any]], list[torch.Tensor]]:
    """(inputs, output) per seed at interpreter sizes; weights are drawn once, like a verifier trial."""
    fitted = fit_problem(problem.source, filename=problem.id)
    module = load_program(fitted.source, problem.id)
    try:
        torch.manual_seed(1234)
        model = module.Model(*module.get_init_inputs())
        all_inputs, outputs = [], []
        for seed in seeds:
            torch.manual_seed(seed)
            inputs = module.get_inputs()
            with torch.no_grad():
                out = model(*inputs)
            assert isinstance(out, torch.Tensor), f"{problem.id}: the built-in problems return one tensor"
            all_inputs.append(inputs)
            outputs.append(out)
        return all_inputs, outputs
    finally:
        sys.modules.pop(module.__name__, None)


def degenerate_outputs(inputs: list[Any], out: torch.Tensor, constant: float) -> dict[str, torch.Tensor]:
    """Zeros, a constant, and the first input's values copied (tiled) into the output's shape."""
    first = inputs[0].reshape(-1).to(out.dtype)
    tiled = first.repeat(-(-out.numel() // first.numel()))[: out.numel()].reshape(out.shape)
    return {
        "zero": torch.zeros_like(out),
        "constant": torch.full_like(out, constant),
        "copy": tiled,
    }


@pytest.mark.parametrize("problem", PROBLEMS, ids=IDS)
def test_reference_runs_and_degenerate_outputs_fail(problem: Problem) -> None:
    all_inputs, outputs = reference_outputs(problem)
    constant = float(outputs[-1].double().mean())  # the mean of a draw the checks below do not all use
    atol, rtol = tolerance_for(str(outputs[0].dtype))
    for seed, inputs, out in zip(SEEDS, all_inputs, outputs):
        assert torch.isfinite(out.double()).all(), f"{problem.id}: non-finite reference output (seed {seed})"
        if out.is_floating_point():
            assert out.numel() == 1 or out.double().std() > 0, f"{problem.id}: constant output"
        for name, fake in degenerate_outputs(inputs, out, constant).items():
            if name == "constant" and seed == SEEDS[-1] and out.numel() == 1:
                continue  # a scalar equals its own mean; the other draws decide
            close = torch.allclose(fake.double(), out.double(), atol=atol, rtol=rtol)
            assert not close, f"{problem.id}: a {name} output passes at tolerance {atol}/{rtol} (seed {seed})"
    # scalar outputs (losses) must vary across draws, or a constant would pass every trial
    if outputs[0].numel() == 1:
        values = [float(o) for o in outputs]
        assert max(values) - min(values) > atol + rtol * max(abs(v) for v in values), f"{problem.id}: {values}"


# ---------------------------------------------------------------- through the verifier (slow)

# The copy candidate tiles the first input over the output (flat index modulo the input's size), so
# it is the identity wherever the shapes allow one.

CANDIDATE = """import torch
import torch.nn as nn
import triton
import triton.language as tl

OUT_SHAPE = {shape}
OUT_DTYPE = torch.{dtype}
KIND = "{kind}"
VALUE = {value}


@triton.jit
def fill_kernel(y_ptr, n, value, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    vals = tl.zeros((BLOCK,), dtype=tl.float32) + value
    tl.store(y_ptr + offs, vals, mask=offs < n)


@triton.jit
def tile_copy_kernel(x_ptr, y_ptr, n, n_in, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs % n_in, mask=mask, other=0)
    tl.store(y_ptr + offs, x, mask=mask)


class ModelNew(nn.Module):
    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, *inputs):
        x = inputs[0]
        y = torch.empty(OUT_SHAPE, device=x.device, dtype=OUT_DTYPE)
        n = y.numel()
        grid = (triton.cdiv(n, 1024),)
        if KIND == "copy":
            tile_copy_kernel[grid](x, y, n, x.numel(), BLOCK=1024)
        else:
            fill_kernel[grid](y, n, VALUE, BLOCK=1024)
        return y
"""


def degenerate_candidates(problem: Problem, max_elements: int) -> dict[str, str]:
    """Zero-fill, constant-fill (the reference output's mean) and, where shapes allow, copy candidates."""
    fitted = fit_problem(problem.source, max_elements=max_elements, filename=problem.id)
    module = load_program(fitted.source, problem.id)
    try:
        torch.manual_seed(4321)
        model = module.Model(*module.get_init_inputs())
        inputs = module.get_inputs()
        with torch.no_grad():
            out = model(*inputs)
    finally:
        sys.modules.pop(module.__name__, None)
    shape = tuple(out.shape)
    dtype = str(out.dtype).removeprefix("torch.")
    kinds = {"zero": 0.0, "constant": float(out.double().mean())}
    if inputs[0].numel() == out.numel():  # the first input reshaped to the output
        kinds["copy"] = 0.0
    return {
        kind: CANDIDATE.format(shape=shape, dtype=dtype, kind=kind, value=repr(value)) for kind, value in kinds.items()
    }


@pytest.fixture(scope="module")
def verifier() -> Any:
    """One warm verifier for the whole module: CPU interpreter, the default input distribution only."""
    from evokernel.verify import Verifier, VerifySettings

    # Probes (scaled/shifted inputs) are off on purpose: the audit is about each problem's own inputs.
    with Verifier(VerifySettings(backend="cpu", trials=2, probes=False)) as v:
        yield v


@pytest.mark.slow
@pytest.mark.parametrize("problem", PROBLEMS, ids=IDS)
def test_degenerate_triton_candidates_are_not_correct(problem: Problem, verifier: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from evokernel.verify.rules import RULES

    candidates = degenerate_candidates(problem, verifier.settings.max_elements)
    assert {"zero", "constant"} <= set(candidates)
    with ThreadPoolExecutor(max_workers=verifier.workers) as pool:
        verdicts = dict(zip(candidates, pool.map(lambda src: verifier.evaluate(problem, src), candidates.values())))
    for kind, verdict in verdicts.items():
        assert verdict.status != "correct", f"{problem.id}: the {kind} candidate passed"
        # It failed for the right reason: it built and ran its kernel, and the outputs were judged.
        assert verdict.status in ("incorrect", "rejected"), f"{problem.id} {kind}: {verdict.summary()}"
        if verdict.status == "rejected":
            assert RULES[verdict.rule].stage != "static", f"{problem.id} {kind}: {verdict.summary()}"
        assert verdict.kernels_launched, f"{problem.id} {kind}: no kernel ran ({verdict.summary()})"
