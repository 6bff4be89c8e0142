"""GroupNorm over NCHW activations; every (sample, group) has its own mean and spread."""

import torch
import torch.nn as nn

batch_size = 16
num_groups = 8
channels_per_group = 8
height = 128
width = 128


class Model(nn.Module):
    """nn.GroupNorm(num_groups, channels) with a learned affine transform."""

    def __init__(self, num_groups: int, channels: int) -> None:
        super().__init__()
        self.gn = nn.GroupNorm(num_groups, channels)
        with torch.no_grad():
            self.gn.weight.uniform_(0.5, 1.5)
            self.gn.bias.normal_(0.0, 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gn(x)


def get_inputs() -> list:
    channels = num_groups * channels_per_group
    scale = (torch.rand(batch_size, num_groups, 1, 1, 1) * 3.0 + 0.5).expand(-1, -1, channels_per_group, 1, 1)
    shift = torch.randn(batch_size, num_groups, 1, 1, 1).expand(-1, -1, channels_per_group, 1, 1) * 2.0
    x = torch.randn(batch_size, num_groups, channels_per_group, height, width) * scale + shift
    return [x.reshape(batch_size, channels, height, width)]


def get_init_inputs() -> list:
    return [num_groups, num_groups * channels_per_group]
