"""ResNet basic block: conv-bn-relu-conv-bn plus the identity skip, then ReLU (batch statistics)."""

import torch
import torch.nn as nn

batch_size = 16
channels = 64
height = 56
width = 56


class Model(nn.Module):
    """y = relu(bn2(conv2(relu(bn1(conv1(x))))) + x)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels, track_running_stats=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels, track_running_stats=False)
        with torch.no_grad():
            for bn in (self.bn1, self.bn2):
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.normal_(0.0, 0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + x)


def get_inputs() -> list:
    return [torch.randn(batch_size, channels, height, width)]


def get_init_inputs() -> list:
    return [channels]
