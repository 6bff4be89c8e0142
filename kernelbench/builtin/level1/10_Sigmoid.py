"""Logistic sigmoid over inputs wide enough to reach both saturated tails."""

import torch
import torch.nn as nn

batch_size = 16
dim = 16384


class Model(nn.Module):
    """y = 1 / (1 + exp(-x))."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)


def get_inputs() -> list:
    return [torch.randn(batch_size, dim) * 3.0]


def get_init_inputs() -> list:
    return []
