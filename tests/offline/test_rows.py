"""Softmax and norm families (and losses built from them) against torch."""

from __future__ import annotations

import pytest

from evokernel.agent.offline.codegen import generate

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.mark.parametrize("mode", ["online", "loop", "fit"])
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_any_row_length(check, make_problem, mode, fn):
    src = make_problem(f"torch.{fn}(x, dim=-1)", "[torch.randn(5, 1500) * 4.0]")
    check(src, {"softmax": {"mode": mode, "BLOCK_R": 256}}, atol=1e-5)


@pytest.mark.parametrize("dim", [0, 1])
def test_softmax_inner_dims_and_fp16(check, make_problem, dim):
    check(make_problem(f"torch.softmax(x * 0.5, dim={dim}) * 3.0", "[torch.randn(3, 17, 6)]"), atol=1e-5)
    check(make_problem(f"torch.softmax(x, dim={dim})", "[torch.randn(6, 19, dtype=torch.float16)]"))


def test_one_pass_softmax_needs_the_row_to_fit(pair, close, make_problem):
    src = make_problem("torch.softmax(x, dim=-1)", "[torch.randn(4, 300) * 3.0]")
    close(*pair(src, generate(src, {"softmax": {"mode": "one_pass", "BLOCK_R": 512}})), atol=1e-5)
    with pytest.raises(ValueError, match="one chunk of 64 elements"):  # refused, never silently wrong
        pair(src, generate(src, {"softmax": {"mode": "one_pass", "BLOCK_R": 64}}))


@pytest.mark.parametrize("shape", [(4, 33), (2, 3, 65), (1, 1, 7)])
def test_layer_norm_affine(check, make_problem, shape):
    d = shape[-1]
    init = f"self.ln = nn.LayerNorm({d})\n        nn.init.uniform_(self.ln.weight, 0.5, 1.5)\n        nn.init.normal_(self.ln.bias)"
    check(make_problem("self.ln(x)", f"[torch.randn{shape} * 2.0 + 1.0]", init=init), atol=1e-4)


def test_layer_norm_two_dims_no_affine_and_modes(check, make_problem):
    src = make_problem("F.layer_norm(x, x.shape[-2:])", "[torch.randn(3, 5, 70)]")
    for mode in ("loop", "fit"):
        check(src, {"norm": {"mode": mode, "BLOCK_R": 128}}, atol=1e-4)


def test_rms_norm_pattern_fused_into_one_row_kernel(check, make_problem):
    src = make_problem(
        "x / torch.sqrt(torch.mean(x * x, dim=-1, keepdim=True) + 1e-6) * self.w",
        "[torch.randn(2, 9, 130)]",
        init="self.w = nn.Parameter(torch.rand(130) + 0.5)",
    )
    gen = check(src, atol=1e-4)
    assert [k.kernel.family for k in gen.plan.kernels] == ["norm"]
    apart = check(src, {"norm": {"fuse": False}}, atol=1e-4)
    assert [k.kernel.family for k in apart.plan.kernels] == ["reduction", "elementwise"]


def test_normalizations_built_from_reductions(check, make_problem):
    check(make_problem("F.normalize(x, p=2.0, dim=1)", "[torch.randn(3, 21, 5)]"))
    check(make_problem("x / torch.sum(torch.abs(x), dim=1, keepdim=True)", "[torch.randn(4, 30)]"))
    check(
        make_problem(
            "self.bn(x)",
            "[torch.randn(4, 3, 5, 6) * 2 + 1]",
            init="self.bn = nn.BatchNorm2d(3, track_running_stats=False)",
        ),
        atol=1e-4,
    )
    check(make_problem("self.gn(x)", "[torch.randn(2, 6, 5, 3)]", init="self.gn = nn.GroupNorm(3, 6)"), atol=1e-4)


LOSSES = {
    "mse": ("F.mse_loss(x, y)", "[torch.randn(6, 41), torch.randn(6, 41)]"),
    "smooth_l1": ("F.smooth_l1_loss(x, y)", "[torch.randn(6, 41) * 2, torch.randn(6, 41)]"),
    "kl": (
        "F.kl_div(x, y, reduction='batchmean')",
        "[torch.log_softmax(torch.randn(5, 9), 1), torch.softmax(torch.randn(5, 9), 1)]",
    ),
    "hinge": ("torch.clamp(1.0 - x * y, min=0.0).mean()", "[torch.randn(7, 3), torch.randn(7, 3).sign()]"),
    "cosine": ("torch.mean(1.0 - F.cosine_similarity(x, y, dim=1))", "[torch.randn(6, 20), torch.randn(6, 20)]"),
    "cross_entropy": ("F.cross_entropy(x, y)", "[torch.randn(7, 13) * 3, torch.randint(0, 13, (7,))]"),
    "huber": ("F.huber_loss(x, y, delta=0.5)", "[torch.randn(4, 10) * 2, torch.randn(4, 10)]"),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses(check, make_problem, name):
    forward, inputs = LOSSES[name]
    gen = check(make_problem(forward, inputs, args="x, y"), atol=1e-5)
    assert gen.policy == "strict"


def test_fp16_norms(check, make_problem):
    init = "self.ln = nn.LayerNorm(40).half()"
    check(make_problem("self.ln(x)", "[torch.randn(6, 40, dtype=torch.float16)]", init=init))
    check(
        make_problem("torch.log_softmax(x, dim=-1)", "[torch.randn(5, 300, dtype=torch.float16)]"),
        {"softmax": {"mode": "loop", "BLOCK_R": 64}},
    )
