"""Hyperbolic tangent over inputs that cover the linear region and both tails."""

import torch
import torch.nn as nn

batch_size = 16
dim = 16384


class Model(nn.Module):
    """y = tanh(x)."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)


def get_inputs() -> list:
    return [torch.randn(batch_size, dim) * 2.0]


def get_init_inputs() -> list:
    return []
