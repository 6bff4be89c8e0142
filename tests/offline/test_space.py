"""Configuration spaces: every knob value renders a working kernel; sampling and mutation stay inside."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evokernel.agent.offline import space as S
from evokernel.agent.offline.codegen import generate

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

# one program per family, with shapes on which every value of every knob (risky ones too) is right:
# rows of <= 64 elements, reduction lengths that are multiples of 64, contiguous operands
EASY = {
    "elementwise": ("torch.relu(x) * y + 1.0", "[torch.randn(3, 50), torch.randn(50)]", "x, y", ""),
    "reduction": ("torch.sum(x, dim=1) + torch.argmax(x, dim=1)", "[torch.randn(5, 60)]", "x", ""),
    "softmax": ("torch.softmax(x, dim=-1)", "[torch.randn(6, 40)]", "x", ""),
    "norm": ("self.ln(x)", "[torch.randn(5, 48)]", "x", "self.ln = nn.LayerNorm(48)"),
    "matmul": ("torch.relu(self.fc(x))", "[torch.randn(20, 64)]", "x", "self.fc = nn.Linear(64, 24)"),
    "conv": ("torch.relu(self.conv(x))", "[torch.randn(2, 64, 5, 4)]", "x", "self.conv = nn.Conv2d(64, 6, 1)"),
    "conv_transpose": (
        "self.conv(x) * 2.0",
        "[torch.randn(2, 64, 3, 4)]",
        "x",
        "self.conv = nn.ConvTranspose2d(64, 5, 1, stride=2)",
    ),
    "scan": ("torch.cumsum(x, dim=1)", "[torch.randn(4, 50)]", "x", ""),
    "window": ("self.pool(x)", "[torch.randn(2, 3, 9, 8)]", "x", "self.pool = nn.MaxPool2d(2)"),
}


def _one_knob_variants(family):
    base = S.default_config(family)
    for knob, values in S.SPACES[family].items():
        for v in values:
            if v != base[knob]:
                yield knob, v, {**base, knob: v}


@pytest.mark.parametrize("family", sorted(S.SPACES))
def test_every_knob_value_renders_a_correct_kernel(check, make_problem, family):
    forward, inputs, args, init = EASY[family]
    src = make_problem(forward, inputs, args=args, init=init)
    assert family in generate(src).config
    for knob, value, cfg in _one_knob_variants(family):
        gen = check(src, {family: cfg}, atol=1e-4, rtol=1e-4)
        assert gen.config[family][knob] == value


@pytest.mark.parametrize("family", sorted(S.SPACES))
def test_random_configs_compile(make_problem, family):
    forward, inputs, args, init = EASY[family]
    src = make_problem(forward, inputs, args=args, init=init)
    rng = random.Random(0)
    for _ in range(25):
        cfg = S.sample(family, rng)
        S.validate(family, cfg)
        compile(generate(src, {family: cfg}).source, "<candidate>", "exec")


def test_defaults_are_safe_and_in_space():
    for family in S.SPACES:
        cfg = S.default_config(family)
        S.validate(family, cfg)
        assert S.is_risky(family, cfg) == []
    assert set(S.DEFAULTS) == set(S.SPACES)
    for (family, knob), values in S.RISKY.items():
        assert set(values) <= set(S.SPACES[family][knob])


@settings(max_examples=200, deadline=None)
@given(family=st.sampled_from(sorted(S.SPACES)), seed=st.integers(0, 2**32 - 1))
def test_mutation_moves_one_knob_inside_the_space(family, seed):
    rng = random.Random(seed)
    cfg = S.sample(family, rng)
    new = S.mutate(family, cfg, rng)
    S.validate(family, new)
    assert sum(new[k] != cfg[k] for k in cfg) == 1


def test_sampling_can_avoid_values():
    rng = random.Random(1)
    for _ in range(50):
        assert S.sample("softmax", rng, {"mode": {"one_pass"}})["mode"] != "one_pass"
    with pytest.raises(ValueError):
        S.validate("matmul", {"BLOCK_M": 7})
    with pytest.raises(ValueError):
        S.validate("matmul", {"unknown": 1})
