"""Transposed 2-D convolution that upsamples by its stride (kernel 4, stride 2, padding 1)."""

import torch
import torch.nn as nn

batch_size = 16
in_channels = 64
out_channels = 32
height = 64
width = 64
kernel_size = 4
stride = 2
padding = 1


class Model(nn.Module):
    """nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride, padding)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.deconv(x)


def get_inputs() -> list:
    return [torch.randn(batch_size, in_channels, height, width) * 2.0]


def get_init_inputs() -> list:
    return [in_channels, out_channels, kernel_size, stride, padding]
