"""Elementwise family: fused pointwise chains against torch over odd shapes, dtypes and layouts."""

from __future__ import annotations

import pytest
import torch

from evokernel.agent.offline.codegen import generate

# The interpreter evaluates masked-off lanes too (e.g. 0/0 there): numpy warns, results are unaffected.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

ACTIVATIONS = {
    "relu": "torch.relu(x)",
    "leaky": "F.leaky_relu(x, 0.05)",
    "gelu": "F.gelu(x)",
    "gelu_tanh": "F.gelu(x, approximate='tanh')",
    "silu": "F.silu(x)",
    "sigmoid": "torch.sigmoid(x)",
    "tanh": "torch.tanh(x)",
    "hardtanh": "F.hardtanh(x, -0.5, 0.75)",
    "softplus": "F.softplus(x, beta=2.0, threshold=3.0)",
    "elu": "F.elu(x, alpha=0.7)",
    "selu": "torch.selu(x)",
    "hardsigmoid": "F.hardsigmoid(x)",
    "hardswish": "F.hardswish(x)",
    "mish": "F.mish(x)",
    "softsign": "F.softsign(x)",
    "chain": "torch.clamp(torch.exp(-x.abs()) * 3.0 - 1.0, min=-0.5) + torch.log1p(x * x) / 2",
    "where": "torch.where(x > 0.1, x, x * 0.25) - (x >= 0).float()",
    "pow": "x ** 3 - torch.sqrt(x.abs() + 1.0) + torch.rsqrt(x * x + 2.0)",
    "newgelu": "0.5 * x * (1.0 + torch.tanh(0.7978845608 * (x + 0.044715 * torch.pow(x, 3.0))))",
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("shape", [(3, 17), (1, 1), (5, 1, 7)])
def test_activations_fp32(check, make_problem, name, shape):
    src = make_problem(ACTIVATIONS[name], f"[torch.randn{shape} * 3.0]")
    check(src)


@pytest.mark.parametrize("name", ["relu", "gelu", "silu", "tanh", "chain", "softplus"])
def test_activations_fp16(check, make_problem, name):
    src = make_problem(ACTIVATIONS[name], "[torch.randn(4, 33, dtype=torch.float16) * 2.0]")
    gen = check(src)
    assert "tl.float32" in gen.source  # computes in fp32, stores fp16


def test_broadcasting_operands(check, make_problem):
    src = make_problem(
        "torch.relu(x + self.bias) * s - y",
        "[torch.randn(2, 3, 5, 7), torch.randn(3, 1, 1), torch.randn(7)]",
        init="self.bias = nn.Parameter(torch.randn(3, 1, 1))",
        args="x, s, y",
    )
    check(src)


def test_scalar_and_integer_operands(check, make_problem):
    src = make_problem(
        "(x > y).to(torch.float32) * 2 + (x * 0.5).round().clamp(-1, 1) + torch.maximum(x, y)",
        "[torch.randn(3, 9), torch.randn(9)]",
        args="x, y",
    )
    gen = check(src)
    assert gen.policy == "strict" and not gen.unsupported


def test_round_halves_to_even_and_floor_divide(check, make_problem):
    # exact halves (-2.5 .. 2.5 in steps of 0.5) round to the even neighbour, as torch.round does
    src = make_problem(
        "torch.round(x) + torch.round(x * 3.7, decimals=1) * 10 + torch.floor_divide(x, 0.7) * 100 + (k // 3)",
        "[torch.arange(-5, 6).float().repeat(3, 1) / 2, torch.randint(-20, 20, (3, 11))]",
        args="x, k",
    )
    gen = check(src)
    assert gen.policy == "strict" and not gen.unsupported


def test_integer_remainder_takes_the_sign_of_the_divisor(check, make_problem):
    # torch.remainder floors (the sign of the divisor); Triton's % truncates (the sign of the dividend)
    src = make_problem(
        "(k % 3).to(torch.float32) + (k % -4).to(torch.float32) * 10 + torch.div(k, 3, rounding_mode='floor') * 100 + x",
        "[torch.randint(-50, 50, (4, 33)), torch.randn(4, 33)]",
        args="k, x",
    )
    check(src)


def test_pow_with_a_tensor_exponent_on_negative_bases(check, make_problem):
    # integral exponents give real values for negative bases (the sign from the parity), fractional
    # ones NaN, and anything ** 0 is 1, as torch computes them
    src = make_problem(
        "torch.pow(x, e) + torch.pow(x * 0.0, e.abs().floor())",
        "[torch.randn(5, 40), torch.cat([torch.randint(-3, 4, (5, 30)).float(), torch.rand(5, 10) * 3], dim=1)]",
        args="x, e",
    )
    check(src, atol=1e-4, rtol=1e-4)


def test_non_contiguous_inputs_are_read_through_strides(pair, close, make_problem):
    src = make_problem("torch.sigmoid(x) * y", "[torch.randn(6, 10), torch.randn(6, 10)]", args="x, y")
    gen = generate(src)
    x = torch.randn(10, 6).t()  # non-contiguous
    y = torch.randn(6, 1).expand(6, 10)  # broadcast view (stride 0)
    close(*pair(src, gen, inputs=[x, y]))


def test_explicit_contiguous_copy(check, make_problem):
    check(make_problem("torch.relu(x.transpose(0, 1).contiguous()) + 1", "[torch.randn(7, 5)]"))


def test_same_candidate_for_other_sizes(pair, close, make_problem):
    src = make_problem("F.gelu(x) * self.w", "[torch.randn(batch, dim)]", init="self.w = nn.Parameter(torch.randn(init_args[0]))",
                       consts="batch = 8\ndim = 64", init_inputs="[dim]")  # fmt: skip
    gen = generate(src)
    for sizes in ({"batch": 3, "dim": 17}, {"batch": 1, "dim": 1}, {"batch": 5, "dim": 130}):
        close(*pair(src, gen, sizes=sizes))


def test_flat_indexing_is_risky(pair, close, error, make_problem):
    """indexing="flat" is right for contiguous, leading-dim broadcasting and wrong for [C, 1, 1] biases."""
    easy = make_problem("x * y", "[torch.randn(4, 6), torch.randn(6)]", args="x, y")
    close(*pair(easy, generate(easy, {"elementwise": {"indexing": "flat"}})))
    hard = make_problem(
        "x + self.bias", "[torch.randn(2, 3, 4, 5)]", init="self.bias = nn.Parameter(torch.randn(3, 1, 1))"
    )
    close(*pair(hard, generate(hard, {"elementwise": {"indexing": "strided"}})))
    assert error(*pair(hard, generate(hard, {"elementwise": {"indexing": "flat"}}))) > 1e-2


def test_output_never_aliases_an_input(pair, make_problem):
    src = make_problem("x.view(-1)", "[torch.randn(3, 4)]")
    gen = generate(src)
    x = torch.randn(3, 4)
    _, got = pair(src, gen, inputs=[x])
    assert got[0].data_ptr() != x.data_ptr() and torch.equal(got[0], x.view(-1))


def test_binary_max_min_and_comparisons(check, make_problem):
    src = make_problem("torch.max(x, y) - torch.min(x, y * 2) + (x >= y).float() * torch.where(x != y, 1.0, -1.0)",
                       "[torch.randn(3, 7), torch.randn(7)]", args="x, y")  # fmt: skip
    assert check(src).policy == "strict"


@pytest.mark.parametrize("container", ["({a}, {b})", "[{a}, {b}]"])
def test_several_outputs_come_back_in_the_forwards_container(check, make_problem, container):
    import types

    src = make_problem(container.format(a="x + y", b="(x * y).sum(-1)"), "[torch.randn(4, 9), torch.randn(4, 9)]",
                       args="x, y")
    gen = check(src)  # the values
    module = types.ModuleType("cand_container")
    exec(compile(gen.source, "<cand_container>", "exec"), module.__dict__)
    got = module.ModelNew()(torch.randn(4, 9), torch.randn(4, 9))
    assert type(got) is (tuple if container.startswith("(") else list) and len(got) == 2  # the structure
