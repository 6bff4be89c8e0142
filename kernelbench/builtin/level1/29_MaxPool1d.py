"""1-D max pooling over long sequences (kernel 4, stride 2)."""

import torch
import torch.nn as nn

batch_size = 16
channels = 64
length = 16384
kernel_size = 4
stride = 2


class Model(nn.Module):
    """nn.MaxPool1d(kernel_size, stride)."""

    def __init__(self, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.pool = nn.MaxPool1d(kernel_size, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)


def get_inputs() -> list:
    return [torch.randn(batch_size, channels, length)]


def get_init_inputs() -> list:
    return [kernel_size, stride]
