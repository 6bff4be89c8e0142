"""Fully connected layer with bias: y = x @ W^T + b."""

import torch
import torch.nn as nn

batch_size = 1024
in_features = 4096
out_features = 2048


class Model(nn.Module):
    """nn.Linear(in_features, out_features) applied to a batch of rows."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def get_inputs() -> list:
    return [torch.randn(batch_size, in_features) * 2.0]


def get_init_inputs() -> list:
    return [in_features, out_features]
