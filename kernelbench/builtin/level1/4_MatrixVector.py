"""Matrix-vector product y = A @ v (memory-bound GEMV), v given as a column."""

import torch
import torch.nn as nn

rows = 4096
cols = 8192


class Model(nn.Module):
    """y = A @ v with A of shape (rows, cols) and v of shape (cols, 1)."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return torch.matmul(a, v)


def get_inputs() -> list:
    return [torch.randn(rows, cols), torch.randn(cols, 1)]


def get_init_inputs() -> list:
    return []
