"""Inclusive prefix sum along long rows (a scan)."""

import torch
import torch.nn as nn

batch_size = 128
length = 8192


class Model(nn.Module):
    """y = cumsum(x, dim=1)."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(x, dim=1)


def get_inputs() -> list:
    return [torch.randn(batch_size, length)]


def get_init_inputs() -> list:
    return []
