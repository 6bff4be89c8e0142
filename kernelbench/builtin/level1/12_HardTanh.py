"""HardTanh: clamp to [-1, 1]; inputs put roughly half the values outside the band."""

import torch
import torch.nn as nn

batch_size = 16
dim = 16384


class Model(nn.Module):
    """y = min(max(x, -1), 1)."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.hardtanh(x, min_val=-1.0, max_val=1.0)


def get_inputs() -> list:
    return [torch.randn(batch_size, dim) * 1.5]


def get_init_inputs() -> list:
    return []
