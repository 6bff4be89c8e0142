"""Reduction family: one-or-more-dim reductions against torch, keepdim or not, odd shapes."""

from __future__ import annotations

import pytest

from evokernel.agent.offline.codegen import generate

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

OPS = {
    "sum": "torch.sum(x, dim={d}, keepdim={k})",
    "mean": "torch.mean(x, dim={d}, keepdim={k})",
    "amax": "torch.amax(x, dim={d}, keepdim={k})",
    "amin": "torch.amin(x, dim={d}, keepdim={k})",
    "var": "torch.var(x, dim={d}, keepdim={k})",
    "std0": "torch.std(x, dim={d}, keepdim={k}, correction=0)",
    "norm2": "torch.linalg.vector_norm(x, 2, dim={d}, keepdim={k})",
    "norm1": "torch.linalg.vector_norm(x, 1, dim={d}, keepdim={k})",
    "norminf": "torch.linalg.vector_norm(x, float('inf'), dim={d}, keepdim={k})",
    "logsumexp": "torch.logsumexp(x, dim={d}, keepdim={k})",
}


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("dim", [1, -1, (0, 2)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_reductions(check, make_problem, op, dim, keepdim):
    check(make_problem(OPS[op].format(d=dim, k=keepdim), "[torch.randn(3, 37, 5) * 2.0]"))


@pytest.mark.parametrize("op", ["argmax", "argmin"])
@pytest.mark.parametrize("dim", [0, 1, 2])
def test_arg_reductions(check, make_problem, op, dim):
    # ties broken toward the first index as in torch: integer-valued inputs have many ties
    check(make_problem(f"torch.{op}(x, dim={dim})", "[torch.randint(0, 4, (4, 33, 6)).float()]"))


def test_max_with_indices_and_prod(check, make_problem):
    check(make_problem("torch.max(x, dim=1)", "[torch.randn(5, 19)]"))
    check(make_problem("torch.min(x, dim=0, keepdim=True)", "[torch.randn(5, 19)]"))
    check(make_problem("torch.prod(x, dim=1)", "[1.0 + 0.1 * torch.randn(4, 23)]"), rtol=1e-3)


def test_full_reductions_and_one_element_dims(check, make_problem):
    check(make_problem("x.sum() + x.mean()", "[torch.randn(7, 1, 9)]"))
    check(make_problem("x.max()", "[torch.randn(1, 1)]"))
    check(make_problem("torch.sum(x, dim=1)", "[torch.randn(6, 1, 4)]"))


def test_fp16_reduction_accumulates_in_fp32(check, make_problem):
    check(make_problem("torch.sum(x, dim=-1)", "[torch.randn(3, 2000, dtype=torch.float16)]"), atol=0.1, rtol=1e-2)


def test_long_rows_loop_for_every_mode_but_one_pass(pair, close, make_problem):
    src = make_problem("torch.sum(x * x, dim=-1)", "[torch.randn(3, 5000)]")
    for mode in ("loop", "fit"):
        close(*pair(src, generate(src, {"reduction": {"mode": mode, "BLOCK_R": 128}})), atol=1e-2, rtol=1e-4)
    # one_pass reads the first BLOCK_R elements only: right for short rows; long ones are refused
    with pytest.raises(ValueError, match="one chunk of 128 elements .* rows of 5000 elements"):
        pair(src, generate(src, {"reduction": {"mode": "one_pass", "BLOCK_R": 128}}))
    short = make_problem("torch.sum(x * x, dim=-1)", "[torch.randn(3, 100)]")
    close(*pair(short, generate(short, {"reduction": {"mode": "one_pass", "BLOCK_R": 128}})), atol=1e-3)


def test_fp16_accumulation_is_risky(pair, close, error, make_problem):
    """acc="input" keeps fp16 sums in fp16: a long row's running sum overflows (the mean itself is fine)."""
    src = make_problem("torch.mean(x, dim=-1)", "[torch.rand(4, 4096, dtype=torch.float16) + 30.0]")
    close(*pair(src, generate(src, {"reduction": {"acc": "fp32", "mode": "loop", "BLOCK_R": 64}})))
    assert error(*pair(src, generate(src, {"reduction": {"acc": "input", "mode": "loop", "BLOCK_R": 64}}))) > 1.0


def test_epilogue_fused_into_the_reduction(check, make_problem):
    gen = check(make_problem("torch.sqrt(torch.mean(x * x, dim=1) + 1e-5) * 2.0", "[torch.randn(4, 50)]"))
    assert [k.kernel.family for k in gen.plan.kernels] == ["reduction"]
    unfused = generate(gen.plan and make_problem("torch.sqrt(torch.mean(x * x, dim=1) + 1e-5) * 2.0", "[torch.randn(4, 50)]"),
                       {"reduction": {"fuse": False}})  # fmt: skip
    assert [k.kernel.family for k in unfused.plan.kernels] == ["reduction", "elementwise"]
