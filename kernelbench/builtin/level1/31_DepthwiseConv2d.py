"""Depthwise 2-D convolution (one 3x3 filter per channel, groups = channels)."""

import torch
import torch.nn as nn

batch_size = 16
channels = 64
height = 128
width = 128
kernel_size = 3


class Model(nn.Module):
    """nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels)."""

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def get_inputs() -> list:
    return [torch.randn(batch_size, channels, height, width) * 2.0]


def get_init_inputs() -> list:
    return [channels, kernel_size]
