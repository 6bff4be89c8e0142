"""Scan, window (pooling) and conv families against torch."""

from __future__ import annotations

import pytest

from evokernel.agent.offline.codegen import generate

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.mark.parametrize(
    "forward",
    [
        "torch.cumsum(x, dim=1)",
        "torch.cumsum(x, dim=0)",
        "torch.cumprod(1.0 + 0.01 * x, dim=-1)",
        "torch.flip(torch.cumsum(torch.flip(x, dims=[1]), dim=1), dims=[1])",
        "torch.cumsum(x * (x > 0), dim=1) - x",
    ],
)
def test_scans(check, make_problem, forward):
    check(make_problem(forward, "[torch.randn(5, 700)]"), {"scan": {"BLOCK_R": 128}}, atol=1e-4, rtol=1e-4)


def test_one_pass_scan_is_risky(pair, close, make_problem):
    src = make_problem("torch.cumsum(x, dim=1)", "[torch.randn(3, 300)]")
    close(*pair(src, generate(src, {"scan": {"mode": "one_pass", "BLOCK_R": 512}})), atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="scans each row in one chunk of 128 elements"):
        pair(src, generate(src, {"scan": {"mode": "one_pass", "BLOCK_R": 128}}))


@pytest.mark.parametrize(
    "layer, shape",
    [
        ("nn.MaxPool2d(3, stride=2, padding=1)", "(2, 3, 11, 9)"),
        ("nn.MaxPool2d(2, dilation=2)", "(2, 3, 10, 9)"),
        ("nn.MaxPool1d(4, stride=3, ceil_mode=True)", "(2, 5, 23)"),
        ("nn.AvgPool2d(3, stride=2, padding=1)", "(2, 3, 11, 9)"),
        ("nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)", "(2, 3, 11, 9)"),
        ("nn.AvgPool1d(5, stride=2)", "(3, 4, 21)"),
        ("nn.MaxPool3d(2)", "(1, 2, 5, 6, 7)"),
    ],
)
def test_pooling(check, make_problem, layer, shape):
    check(make_problem("self.pool(x)", f"[torch.randn{shape}]", init=f"self.pool = {layer}"))


@pytest.mark.parametrize(
    "layer, shape",
    [
        ("nn.Conv2d(3, 8, 3, padding=1)", "(2, 3, 9, 7)"),
        ("nn.Conv2d(4, 6, (3, 2), stride=2, dilation=(1, 2), groups=2, bias=False)", "(2, 4, 11, 10)"),
        ("nn.Conv2d(5, 5, 3, padding=1, groups=5)", "(2, 5, 8, 6)"),
        ("nn.Conv1d(4, 7, 5, stride=2)", "(3, 4, 29)"),
        ("nn.Conv3d(2, 3, 2)", "(1, 2, 4, 5, 3)"),
        ("nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1)", "(2, 4, 5, 6)"),
        ("nn.ConvTranspose1d(3, 4, 3, stride=3, padding=1, output_padding=2, groups=1)", "(2, 3, 7)"),
    ],
)
def test_convolutions(check, make_problem, layer, shape):
    gen = check(
        make_problem("self.conv(x)", f"[torch.randn{shape}]", init=f"self.conv = {layer}"), atol=1e-4, rtol=1e-4
    )
    assert gen.policy == "strict"


def test_conv_with_fused_epilogue(check, make_problem):
    src = make_problem(
        "torch.clamp(self.conv(x) + self.bias, -1.0, 1.0)",
        "[torch.randn(2, 3, 8, 8)]",
        init="self.conv = nn.Conv2d(3, 4, 3)\n        self.bias = nn.Parameter(torch.randn(4, 1, 1))",
    )
    gen = check(src, atol=1e-4)
    assert [k.kernel.family for k in gen.plan.kernels] == ["conv"]


def test_depthwise_groups_follow_the_channels(pair, close, make_problem):
    """groups=channels is a size: the candidate reads it from the input, so other sizes work too."""
    src = make_problem("self.conv(x)", "[torch.randn(2, channels, 9, 9)]", init="self.conv = nn.Conv2d(init_args[0], init_args[0], 3, groups=init_args[0])",
                       consts="channels = 8", init_inputs="[channels]")  # fmt: skip
    gen = generate(src)
    for c in (8, 3):
        close(*pair(src, gen, sizes={"channels": c}), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_upsampling_gathers(check, make_problem, mode):
    extra = ", align_corners=False" if mode == "bilinear" else ""
    gen = check(
        make_problem(f"F.interpolate(x, scale_factor=2.0, mode={mode!r}{extra}) * 2.0", "[torch.randn(2, 3, 5, 7)]"),
        atol=1e-5,
    )
    assert gen.policy == "strict"


def test_fp16_conv_and_pool(check, make_problem):
    src = make_problem("self.pool(torch.relu(self.conv(x)))", "[torch.randn(2, 4, 9, 8, dtype=torch.float16)]",
                       init="self.conv = nn.Conv2d(4, 5, 3, padding=1).half()\n        self.pool = nn.AvgPool2d(2)")  # fmt: skip
    check(src, atol=2e-2, rtol=2e-2)


def test_even_k_loop_conv_refuses_a_ragged_reduction(pair, close, make_problem):
    init = "self.conv = nn.Conv2d(4, 5, 2, bias=False)"
    fits = make_problem("self.conv(x)", "[torch.randn(2, 4, 7, 7)]", init=init)  # 4 channels x 4 taps = 16
    close(*pair(fits, generate(fits, {"conv": {"k_loop": "even", "BLOCK_K": 16}})), atol=1e-4, rtol=1e-4)
    ragged = make_problem("self.conv(x)", "[torch.randn(2, 3, 7, 7)]", init=init.replace("(4, 5", "(3, 5"))
    with pytest.raises(ValueError, match="whole chunks of 16 along the reduction .* 12 = input channels"):
        pair(ragged, generate(ragged, {"conv": {"k_loop": "even", "BLOCK_K": 16}}))
