"""SiLU (swish) activation: x * sigmoid(x)."""

import torch
import torch.nn as nn

batch_size = 16
dim = 16384


class Model(nn.Module):
    """y = x * sigmoid(x)."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.silu(x)


def get_inputs() -> list:
    return [torch.randn(batch_size, dim) * 3.0]


def get_init_inputs() -> list:
    return []
