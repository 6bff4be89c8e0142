"""Smooth L1 (Huber, beta = 1) loss; the residual scale changes per call, between the quadratic and linear regimes."""

import torch
import torch.nn as nn

batch_size = 128
dim = 4096


class Model(nn.Module):
    """loss = mean(0.5 r^2 if |r| < 1 else |r| - 0.5), r = pred - target."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.smooth_l1_loss(pred, target)


def get_inputs() -> list:
    spread = torch.rand(()) * 3.0 + 0.2
    target = torch.randn(batch_size, dim)
    return [target + torch.randn(batch_size, dim) * spread, target]


def get_init_inputs() -> list:
    return []
