"""Softplus log(1 + exp(x)), a smooth ReLU, on inputs spanning both asymptotes."""

import torch
import torch.nn as nn

batch_size = 16
dim = 16384


class Model(nn.Module):
    """y = log(1 + exp(x))."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.softplus(x)


def get_inputs() -> list:
    return [torch.randn(batch_size, dim) * 3.0]


def get_init_inputs() -> list:
    return []
