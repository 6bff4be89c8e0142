"""Leaky ReLU with a small negative slope on zero-centred inputs."""

import torch
import torch.nn as nn

batch_size = 16
dim = 16384


class Model(nn.Module):
    """y = x if x > 0 else 0.05 * x."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.leaky_relu(x, negative_slope=0.05)


def get_inputs() -> list:
    return [torch.randn(batch_size, dim) * 2.0]


def get_init_inputs() -> list:
    return []
