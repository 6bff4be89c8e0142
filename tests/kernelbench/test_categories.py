"""Categories come from the ops a program runs, its module types, its name and its level."""

from __future__ import annotations

import pytest

from evokernel.programs import ProgramProfile, profile_program
from kernelbench.categories import CATEGORIES, categorize, op_family
from kernelbench.loader import load_suite

# The primary category of every built-in problem (a regression table for the rules).
EXPECTED = {
    "matmul": ["1_SquareMatmul", "2_RectangularMatmul", "3_BatchedMatmul", "4_MatrixVector", "5_Linear"],
    "activation": ["6_ReLU", "7_LeakyReLU", "8_GELU", "9_SiLU", "10_Sigmoid", "11_Tanh", "12_HardTanh", "13_Softplus"],
    "softmax": ["14_Softmax", "15_LogSoftmax"],
    "reduction": ["16_SumOverDim", "17_MeanOverDim", "18_MaxOverDim", "21_LogSumExp"],
    "argreduce": ["19_ArgMax", "20_ArgMin"],
    "norm": ["22_LayerNorm", "23_RMSNorm", "24_BatchNorm2d", "25_GroupNorm", "26_L2Normalize"],
    "pooling": ["27_MaxPool2d", "28_AvgPool2d", "29_MaxPool1d"],
    "conv": ["30_Conv2d", "31_DepthwiseConv2d", "32_Conv1d", "33_ConvTranspose2d"],
    "scan": ["34_Cumsum", "35_Cumprod", "36_ReverseCumsum"],
    "loss": [
        "37_MSELoss",
        "38_CrossEntropyLoss",
        "39_SmoothL1Loss",
        "40_KLDivLoss",
        "41_HingeLoss",
        "42_CosineSimilarityLoss",
    ],
}


def test_builtin_level1_primary_categories() -> None:
    got = {p.name: p.category for p in load_suite("builtin", level=1)}
    expected = {name: cat for cat, names in EXPECTED.items() for name in names}
    assert got == expected


def test_fusions_and_blocks_list_their_parts() -> None:
    by_name = {p.name: p.categories for p in load_suite("builtin", level=2) + load_suite("builtin", level=3)}
    assert by_name["4_Conv2d_BatchNorm_ReLU"][:4] == ["fusion", "conv", "norm", "activation"]
    assert by_name["7_Linear_Scale_LogSoftmax"][:3] == ["fusion", "matmul", "softmax"]
    assert by_name["2_CausalSelfAttention"][:3] == ["block", "matmul", "softmax"]
    assert by_name["3_ResidualBlock"][:3] == ["block", "conv", "norm"]
    assert all(c in CATEGORIES for cats in by_name.values() for c in cats)


@pytest.mark.parametrize(
    ("op", "family"),
    [
        ("aten.addmm", "matmul"),
        ("aten.convolution", "conv"),
        ("aten._log_softmax", "softmax"),
        ("aten.native_group_norm", "norm"),
        ("aten.max_pool2d_with_indices", "pooling"),
        ("aten.nll_loss_forward", "loss"),
        ("aten.cumsum", "scan"),
        ("aten.argmax", "argreduce"),
        ("aten.amax", "reduction"),
        ("aten.relu_", "activation"),
        ("aten.mul", "elementwise"),
        ("aten._scaled_dot_product_flash_attention_for_cpu", "matmul"),
        ("aten.view", None),
        ("aten.transpose", None),
        ("aten.some_new_op", "other"),
    ],
)
def test_op_family(op: str, family: str | None) -> None:
    assert op_family(op) == family


def test_untraced_program_falls_back_to_modules_and_identifiers() -> None:
    profile = ProgramProfile(module_types=["Conv2d"], identifiers=["conv", "relu"], traced=False)
    assert categorize(profile, name="1_Conv2d_ReLU", level=2)[:3] == ["fusion", "conv", "activation"]
    softsign = ProgramProfile(
        ops=["aten.abs", "aten.add", "aten.div"],
        op_counts={},
        traced=True,
        input_shapes=[[4, 8]],
        output_shapes=[[4, 8]],
    )
    assert categorize(softsign, name="30_Softsign")[0] == "activation"


SOURCE = """import torch
import torch.nn as nn

n = 64


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(n, n)
        self.b = nn.Linear(n, n)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


def get_inputs():
    return [torch.randn(8, n)]


def get_init_inputs():
    return []
"""


def test_two_gemms_with_an_activation_are_a_block_and_one_gemm_is_a_fusion() -> None:
    assert categorize(profile_program(SOURCE), name="mlp")[0] == "block"
    single = SOURCE.replace("self.b(torch.relu(self.a(x)))", "torch.relu(self.a(x))")
    assert categorize(profile_program(single), name="gemm_relu")[0] == "fusion"
    plain = SOURCE.replace("self.b(torch.relu(self.a(x)))", "self.a(x)")
    assert categorize(profile_program(plain), name="gemm") == ["matmul"]
