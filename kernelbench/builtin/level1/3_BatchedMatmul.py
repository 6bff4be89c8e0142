"""Batched matrix product: a batch of independent (m x k) @ (k x p) products."""

import torch
import torch.nn as nn

batch = 32
m = 512
k = 1024
p = 512


class Model(nn.Module):
    """C[i] = A[i] @ B[i] for every i in the batch."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.bmm(a, b)


def get_inputs() -> list:
    return [torch.randn(batch, m, k), torch.randn(batch, k, p)]


def get_init_inputs() -> list:
    return []
