"""Suffix sum: y[i] = sum of x[j] for j >= i along each row (a reversed scan)."""

import torch
import torch.nn as nn

batch_size = 128
length = 8192


class Model(nn.Module):
    """y = flip(cumsum(flip(x, 1), 1), 1)."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flip(torch.cumsum(torch.flip(x, dims=[1]), dim=1), dims=[1])


def get_inputs() -> list:
    return [torch.randn(batch_size, length)]


def get_init_inputs() -> list:
    return []
