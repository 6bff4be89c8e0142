"""Row log-softmax over long rows; per-row temperatures vary the normaliser from row to row."""

import torch
import torch.nn as nn

batch_size = 16
dim = 16384


class Model(nn.Module):
    """y = log_softmax(x, dim=1)."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(x, dim=1)


def get_inputs() -> list:
    temperature = torch.rand(batch_size, 1) * 3.0 + 0.5
    return [torch.randn(batch_size, dim) * temperature]


def get_init_inputs() -> list:
    return []
