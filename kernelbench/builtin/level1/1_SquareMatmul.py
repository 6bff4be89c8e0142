"""Dense square matrix product C = A @ B (fp32, GEMM-bound)."""

import torch
import torch.nn as nn

n = 2048


class Model(nn.Module):
    """C = A @ B for two n x n matrices."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.matmul(a, b)


def get_inputs() -> list:
    return [torch.randn(n, n), torch.randn(n, n)]


def get_init_inputs() -> list:
    return []
