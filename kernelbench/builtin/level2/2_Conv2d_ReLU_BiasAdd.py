"""3x3 convolution, ReLU, then a learned per-channel bias added after the activation."""

import torch
import torch.nn as nn

batch_size = 16
in_channels = 32
out_channels = 64
height = 64
width = 64
kernel_size = 3


class Model(nn.Module):
    """y = relu(conv(x)) + bias[c]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.bias = nn.Parameter(torch.randn(out_channels, 1, 1) * 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x)) + self.bias


def get_inputs() -> list:
    return [torch.randn(batch_size, in_channels, height, width) * 2.0]


def get_init_inputs() -> list:
    return [in_channels, out_channels, kernel_size]
