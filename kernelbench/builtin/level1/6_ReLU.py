"""ReLU over a wide activation matrix; inputs straddle zero so about half the outputs are clamped."""

import torch
import torch.nn as nn

batch_size = 16
dim = 16384


class Model(nn.Module):
    """y = max(x, 0)."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)


def get_inputs() -> list:
    return [torch.randn(batch_size, dim)]


def get_init_inputs() -> list:
    return []
