"""3x3 convolution, GroupNorm, hard-swish."""

import torch
import torch.nn as nn

batch_size = 16
in_channels = 32
num_groups = 8
channels_per_group = 8
height = 64
width = 64
kernel_size = 3


class Model(nn.Module):
    """y = hardswish(group_norm(conv(x)))."""

    def __init__(self, in_channels: int, out_channels: int, num_groups: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.gn = nn.GroupNorm(num_groups, out_channels)
        with torch.no_grad():
            self.gn.weight.uniform_(0.5, 2.0)
            self.gn.bias.normal_(0.0, 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.hardswish(self.gn(self.conv(x)))


def get_inputs() -> list:
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs() -> list:
    return [in_channels, num_groups * channels_per_group, num_groups, kernel_size]
