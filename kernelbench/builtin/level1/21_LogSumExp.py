"""Row-wise log-sum-exp with a different scale per row (a numerically stable reduction)."""

import torch
import torch.nn as nn

batch_size = 64
dim = 16384


class Model(nn.Module):
    """y = log(sum(exp(x), dim=1))."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(x, dim=1)


def get_inputs() -> list:
    scale = torch.rand(batch_size, 1) * 4.0 + 0.5
    return [torch.randn(batch_size, dim) * scale]


def get_init_inputs() -> list:
    return []
