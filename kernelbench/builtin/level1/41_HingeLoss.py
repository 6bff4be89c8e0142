"""Hinge loss mean(max(0, 1 - y * score)) for labels y in {-1, +1}; score scale and margin change per call."""

import torch
import torch.nn as nn

batch_size = 32768
dim = 16


class Model(nn.Module):
    """loss = mean(clamp(1 - score * label, min=0)), a scalar."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, score: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return torch.clamp(1.0 - score * label, min=0.0).mean()


def get_inputs() -> list:
    scale = torch.rand(()) * 3.0 + 0.2
    margin = torch.rand(()) * 2.5 - 0.5  # from mostly wrong to confidently right
    label = torch.randint(0, 2, (batch_size, dim)).float() * 2.0 - 1.0
    score = (torch.randn(batch_size, dim) + label * margin) * scale
    return [score, label]


def get_init_inputs() -> list:
    return []
