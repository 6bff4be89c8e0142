"""3x3 convolution, 2x2 max pooling, tanh."""

import torch
import torch.nn as nn

batch_size = 16
in_channels = 32
out_channels = 64
height = 128
width = 128
kernel_size = 3
pool_kernel = 2


class Model(nn.Module):
    """y = tanh(maxpool(conv(x)))."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, pool_kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.pool = nn.MaxPool2d(pool_kernel, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.pool(self.conv(x)))


def get_inputs() -> list:
    return [torch.randn(batch_size, in_channels, height, width) * 2.0]


def get_init_inputs() -> list:
    return [in_channels, out_channels, kernel_size, pool_kernel]
