"""Creation and data-movement ops lowered to coordinates and gathers: cat, stack, pad, embedding, ..."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

CASES = {
    "cat": ("torch.relu(torch.cat([x, y * 2.0, x[:, :3]], dim=1))", "[torch.randn(4, 7), torch.randn(4, 5)]", "x, y"),
    "cat_dim0": ("torch.cat((x, y), 0) + 1.0", "[torch.randn(3, 6), torch.randn(5, 6)]", "x, y"),
    "stack": ("torch.stack([x, y, x * y], dim=1).sum(-1)", "[torch.randn(4, 7), torch.randn(4, 7)]", "x, y"),
    "pad": ("F.pad(x, (1, 2, 3, 0), value=-1.5) * 2.0", "[torch.randn(2, 5, 6)]", "x"),
    "pad_crop": ("F.pad(x, (-1, 2))", "[torch.randn(3, 9)]", "x"),
    "embedding": ("F.embedding(i, w) * 3.0", "[torch.randint(0, 10, (4, 5)), torch.randn(10, 6)]", "i, w"),
    "arange_full": ("x + torch.arange(x.shape[-1]).float() * 0.5 + torch.full((x.shape[-1],), 2.0)", "[torch.randn(3, 8)]", "x"),
    "exclusive_cumsum": ("torch.cumsum(torch.cat((torch.zeros_like(x[:, :1]), x), dim=1), dim=1)[:, :-1]", "[torch.randn(4, 50)]", "x"),
    "sdpa": ("F.scaled_dot_product_attention(q, k, v, is_causal=True)",
             "[torch.randn(2, 3, 8, 16), torch.randn(2, 3, 8, 16), torch.randn(2, 3, 8, 16)]", "q, k, v"),
    "bce": ("F.binary_cross_entropy(torch.sigmoid(a), b)", "[torch.randn(8, 10), torch.rand(8, 10)]", "a, b"),
    "diag_matmul": ("torch.diag(a) @ b", "[torch.randn(12), torch.randn(12, 9)]", "a, b"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CASES))
def test_indexing_ops(check, make_problem, name):
    forward, inputs, args = CASES[name]
    gen = check(make_problem(forward, inputs, args=args), atol=1e-5, rtol=1e-5)
    assert gen.policy == "strict", gen.unsupported
