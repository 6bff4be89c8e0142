"""Matmul family: mm/addmm/bmm/mv with fused epilogues, strided operands, fp16."""

from __future__ import annotations

import pytest

from evokernel.agent.offline.codegen import generate

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.mark.parametrize(
    "forward, inputs",
    [
        ("a @ b", "[torch.randn(17, 33), torch.randn(33, 9)]"),
        ("torch.bmm(a, b)", "[torch.randn(3, 5, 40), torch.randn(3, 40, 7)]"),
        ("torch.matmul(a, b)", "[torch.randn(2, 3, 6, 20), torch.randn(20, 11)]"),
        ("torch.matmul(a, b)", "[torch.randn(31, 65), torch.randn(65)]"),
        ("a.t() @ b.t()", "[torch.randn(19, 8), torch.randn(12, 19)]"),
        ("torch.triu(a @ b)", "[torch.randn(20, 16), torch.randn(16, 20)]"),
        ("torch.tril(a @ b, diagonal=-1) * 2.0", "[torch.randn(20, 16), torch.randn(16, 20)]"),
        ("a @ b", "[torch.randn(1, 1), torch.randn(1, 1)]"),
    ],
)
def test_matmul_shapes_and_layouts(check, make_problem, forward, inputs):
    check(make_problem(forward, inputs, args="a, b"), atol=1e-4, rtol=1e-4)


def test_linear_with_fused_epilogue(check, make_problem):
    src = make_problem(
        "F.gelu(self.fc(x)) * 0.5 + x[:, :1]", "[torch.randn(10, 48)]", init="self.fc = nn.Linear(48, 24)"
    )
    gen = check(src, atol=1e-4)
    assert [k.kernel.family for k in gen.plan.kernels] == ["matmul"]
    apart = check(src, {"matmul": {"fuse": False}}, atol=1e-4)
    assert [k.kernel.family for k in apart.plan.kernels] == ["matmul", "elementwise"]


def test_linear_on_3d_input(check, make_problem):
    check(
        make_problem("torch.relu(self.fc(x))", "[torch.randn(2, 7, 30)]", init="self.fc = nn.Linear(30, 13)"), atol=1e-4
    )


def test_fp16_matmul(check, make_problem):
    check(make_problem("a @ b", "[torch.randn(40, 64, dtype=torch.float16), torch.randn(64, 24, dtype=torch.float16)]", args="a, b"),
          atol=5e-2, rtol=1e-2)  # fmt: skip


def test_even_k_loop_is_risky(pair, close, make_problem):
    """k_loop="even" visits whole BLOCK_K chunks only: right when BLOCK_K divides K; otherwise its launcher
    refuses the sizes instead of computing a wrong product."""
    src = make_problem("a @ b", "[torch.randn(16, 48), torch.randn(48, 16)]", args="a, b")
    close(*pair(src, generate(src, {"matmul": {"k_loop": "even", "BLOCK_K": 16}})), atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match=r"whole chunks of 32 along K .*K = 48 is not a multiple"):
        pair(src, generate(src, {"matmul": {"k_loop": "even", "BLOCK_K": 32}}))
