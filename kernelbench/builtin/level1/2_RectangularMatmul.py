"""Rectangular matrix product with a long reduction dimension: (m x k) @ (k x p)."""

import torch
import torch.nn as nn

m = 1024
k = 4096
p = 2048


class Model(nn.Module):
    """C = A @ B with A of shape (m, k) and B of shape (k, p)."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b


def get_inputs() -> list:
    return [torch.randn(m, k), torch.randn(k, p)]


def get_init_inputs() -> list:
    return []
