"""Mean squared error between predictions and targets whose spread changes from call to call."""

import torch
import torch.nn as nn

batch_size = 128
dim = 4096


class Model(nn.Module):
    """loss = mean((pred - target)^2), a scalar."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.mse_loss(pred, target)


def get_inputs() -> list:
    # One spread per call: the loss is far from a constant across input draws.
    spread = torch.rand(()) * 3.0 + 0.25
    target = torch.randn(batch_size, dim)
    return [target + torch.randn(batch_size, dim) * spread, target]


def get_init_inputs() -> list:
    return []
