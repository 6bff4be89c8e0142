"""Sum reduction over the middle dimension of a 3-D tensor, keeping the reduced dimension."""

import torch
import torch.nn as nn

batch_size = 16
dim1 = 256
dim2 = 256


class Model(nn.Module):
    """y = x.sum(dim=1, keepdim=True)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sum(x, dim=self.dim, keepdim=True)


def get_inputs() -> list:
    return [torch.randn(batch_size, dim1, dim2)]


def get_init_inputs() -> list:
    return [1]
