"""Classifier head: GEMM with bias, scaled logits, log-softmax over the classes."""

import torch
import torch.nn as nn

batch_size = 2048
in_features = 2048
num_classes = 1024


class Model(nn.Module):
    """y = log_softmax((x @ W^T + b) * scale, dim=1)."""

    def __init__(self, in_features: int, num_classes: int, scale: float) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, num_classes)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.fc(x) * self.scale, dim=1)


def get_inputs() -> list:
    return [torch.randn(batch_size, in_features)]


def get_init_inputs() -> list:
    return [in_features, num_classes, 4.0]
