"""2-D max pooling with overlapping windows (kernel 3, stride 2, padding 1)."""

import torch
import torch.nn as nn

batch_size = 16
channels = 32
height = 256
width = 256
kernel_size = 3
stride = 2
padding = 1


class Model(nn.Module):
    """nn.MaxPool2d(kernel_size, stride, padding)."""

    def __init__(self, kernel_size: int, stride: int, padding: int) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(kernel_size, stride=stride, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)


def get_inputs() -> list:
    return [torch.randn(batch_size, channels, height, width)]


def get_init_inputs() -> list:
    return [kernel_size, stride, padding]
