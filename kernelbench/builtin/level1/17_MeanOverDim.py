"""Mean over the last dimension; every row carries its own offset so the means spread widely."""

import torch
import torch.nn as nn

batch_size = 16
dim1 = 256
dim2 = 256


class Model(nn.Module):
    """y = x.mean(dim=-1)."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=-1)


def get_inputs() -> list:
    offsets = torch.randn(batch_size, dim1, 1) * 2.0
    return [torch.randn(batch_size, dim1, dim2) + offsets]


def get_init_inputs() -> list:
    return []
