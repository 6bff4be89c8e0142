"""Max reduction over the middle dimension (values only); columns are shifted independently."""

import torch
import torch.nn as nn

batch_size = 16
dim1 = 256
dim2 = 256


class Model(nn.Module):
    """y = x.amax(dim=1)."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.amax(x, dim=1)


def get_inputs() -> list:
    shifts = torch.randn(batch_size, 1, dim2) * 2.0
    return [torch.randn(batch_size, dim1, dim2) + shifts]


def get_init_inputs() -> list:
    return []
