"""Transposed convolution (2x upsampling), a learned per-channel bias, clamp to [-1, 1]."""

import torch
import torch.nn as nn

batch_size = 16
in_channels = 32
out_channels = 32
height = 32
width = 32
kernel_size = 4
stride = 2
padding = 1


class Model(nn.Module):
    """y = clamp(conv_transpose(x) + bias[c], -1, 1)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding)
        self.bias = nn.Parameter(torch.randn(out_channels, 1, 1) * 0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(self.deconv(x) + self.bias, -1.0, 1.0)


def get_inputs() -> list:
    return [torch.randn(batch_size, in_channels, height, width) * 2.0]


def get_init_inputs() -> list:
    return [in_channels, out_channels, kernel_size, stride, padding]
