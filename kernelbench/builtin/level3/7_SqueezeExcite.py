"""Squeeze-and-excitation: global average pool, bottleneck MLP, sigmoid gates that rescale each channel."""

import torch
import torch.nn as nn

batch_size = 32
channels = 256
reduction = 4
height = 32
width = 32


class Model(nn.Module):
    """y = x * sigmoid(W2 relu(W1 mean_hw(x)))[:, :, None, None]."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        squeezed = max(channels // reduction, 1)
        self.fc1 = nn.Linear(channels, squeezed)
        self.fc2 = nn.Linear(squeezed, channels)
        with torch.no_grad():  # gates spread over (0, 1) instead of sitting at 0.5
            self.fc1.weight.normal_(0.0, 2.0 * channels**-0.5)
            self.fc2.weight.normal_(0.0, 4.0 * squeezed**-0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3))
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))
        return x * gate[:, :, None, None]


def get_inputs() -> list:
    # Channels carry their own offsets, so the pooled descriptor differs between channels and samples.
    offsets = torch.randn(batch_size, channels, 1, 1)
    return [torch.randn(batch_size, channels, height, width) + offsets]


def get_init_inputs() -> list:
    return [channels, reduction]
