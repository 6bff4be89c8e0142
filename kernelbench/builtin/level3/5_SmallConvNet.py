"""A small image classifier: two conv-relu-maxpool stages, global average pooling, a linear head."""

import torch
import torch.nn as nn

batch_size = 64
in_channels = 3
width1 = 32
width2 = 64
image_size = 128
num_classes = 100


class Model(nn.Module):
    """conv3x3-relu-pool, conv3x3-relu-pool, adaptive avg pool to 1x1, linear."""

    def __init__(self, in_channels: int, width1: int, width2: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width1, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(width1, width2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(width2, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1))


def get_inputs() -> list:
    return [torch.randn(batch_size, in_channels, image_size, image_size)]


def get_init_inputs() -> list:
    return [in_channels, width1, width2, num_classes]
