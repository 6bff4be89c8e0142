"""Index of the maximum along the middle dimension (continuous inputs, so no ties)."""

import torch
import torch.nn as nn

batch_size = 16
dim1 = 256
dim2 = 256


class Model(nn.Module):
    """y = x.argmax(dim=1) (int64)."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.argmax(x, dim=1)


def get_inputs() -> list:
    return [torch.randn(batch_size, dim1, dim2)]


def get_init_inputs() -> list:
    return []
