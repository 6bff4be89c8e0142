"""Generated kernels through the real verifier (CPU interpreter): strict, mixed, and risky configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from evokernel.agent.offline.codegen import generate

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::RuntimeWarning")]

verify = pytest.importorskip("evokernel.verify")
BUILTIN = Path(__file__).resolve().parents[2] / "kernelbench" / "builtin"


def _settings(policy: str = "strict"):
    return verify.VerifySettings(backend="cpu", policy=policy, trials=3)


@pytest.mark.parametrize(
    "problem",
    ["level1/6_ReLU", "level1/14_Softmax", "level1/22_LayerNorm", "level1/37_MSELoss", "level2/1_Linear_GELU_Scale",
     "level2/2_Conv2d_ReLU_BiasAdd"],
)  # fmt: skip
def test_builtin_problems_pass_strict(problem):
    path = BUILTIN / f"{problem}.py"
    if not path.exists():
        pytest.skip(f"{problem} is not in the built-in suite")
    gen = generate(path.read_text())
    assert gen.policy == "strict"
    verdict = verify.evaluate(path, gen.source, _settings())
    assert verdict.status == "correct", verdict.message
    assert verdict.torch_ops == [] and verdict.kernels_launched


MIXED = """import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return torch.relu(torch.sort(self.conv(x), dim=-1)[0] * 0.5 + 1.0)


def get_inputs():
    return [torch.randn(2, 3, 10, 9)]


def get_init_inputs():
    return []
"""


def test_mixed_plan_passes_policy_mixed():
    gen = generate(MIXED)
    assert gen.policy == "mixed" and gen.unsupported == ["aten.sort.default"]
    assert [k.kernel.family for k in gen.plan.kernels] == ["conv", "elementwise"]  # conv and epilogue in Triton
    verdict = verify.evaluate(MIXED, gen.source, _settings("mixed"))
    assert verdict.status == "correct", verdict.message
    assert verdict.torch_ops == ["aten.sort"]


RISKY_CASES = {
    "flat indexing with a per-channel bias": (
        "level2/2_Conv2d_ReLU_BiasAdd", {"conv": {"fuse": False}, "elementwise": {"indexing": "flat"}}),
    "one-pass softmax on long rows": ("level1/15_LogSoftmax", {"softmax": {"mode": "one_pass", "BLOCK_R": 64}}),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(RISKY_CASES))
def test_risky_configurations_fail_as_incorrect_not_as_hacks(case):
    problem, config = RISKY_CASES[case]
    path = BUILTIN / f"{problem}.py"
    if not path.exists():
        pytest.skip(f"{problem} is not in the built-in suite")
    verdict = verify.evaluate(path, generate(path.read_text(), config).source, _settings())
    # a size-bound risky value is refused by its launcher (a clear runtime error); others compute wrongly
    expected = "runtime_error" if "one_pass" in str(config) else "incorrect"
    assert verdict.status == expected, verdict.message
    assert verdict.rule is None
