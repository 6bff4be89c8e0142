"""Inclusive prefix product of factors near 1 (a multiplicative random walk that neither overflows nor vanishes)."""

import torch
import torch.nn as nn

batch_size = 128
length = 4096


class Model(nn.Module):
    """y = cumprod(x, dim=1)."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumprod(x, dim=1)


def get_inputs() -> list:
    return [1.0 + 0.05 * torch.randn(batch_size, length)]


def get_init_inputs() -> list:
    return []
