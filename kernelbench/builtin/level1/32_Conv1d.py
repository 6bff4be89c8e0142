"""1-D convolution over long sequences, kernel 5, stride 2, no padding."""

import torch
import torch.nn as nn

batch_size = 16
in_channels = 64
out_channels = 128
length = 4096
kernel_size = 5
stride = 2


class Model(nn.Module):
    """nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def get_inputs() -> list:
    return [torch.randn(batch_size, in_channels, length) * 2.0]


def get_init_inputs() -> list:
    return [in_channels, out_channels, kernel_size, stride]
