"""Standard 2-D convolution, 3x3 kernel, same padding, with bias."""

import torch
import torch.nn as nn

batch_size = 16
in_channels = 32
out_channels = 64
height = 128
width = 128
kernel_size = 3


class Model(nn.Module):
    """nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def get_inputs() -> list:
    return [torch.randn(batch_size, in_channels, height, width) * 2.0]


def get_init_inputs() -> list:
    return [in_channels, out_channels, kernel_size]
