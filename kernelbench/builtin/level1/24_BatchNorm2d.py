"""Batch normalisation with batch statistics (no running statistics) over NCHW activations."""

import torch
import torch.nn as nn

batch_size = 16
channels = 64
height = 128
width = 128


class Model(nn.Module):
    """Normalise each channel by its batch mean and variance, then apply a learned affine map."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        # Batch statistics in training and evaluation mode alike.
        self.bn = nn.BatchNorm2d(channels, track_running_stats=False)
        with torch.no_grad():
            self.bn.weight.uniform_(0.5, 1.5)
            self.bn.bias.normal_(0.0, 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x)


def get_inputs() -> list:
    scale = torch.rand(1, channels, 1, 1) * 3.0 + 0.5
    shift = torch.randn(1, channels, 1, 1) * 2.0
    return [torch.randn(batch_size, channels, height, width) * scale + shift]


def get_init_inputs() -> list:
    return [channels]
