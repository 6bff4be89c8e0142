"""GEMM with bias, tanh, then a sum over the output features (GEMM + activation + reduction)."""

import torch
import torch.nn as nn

batch_size = 2048
in_features = 2048
out_features = 2048


class Model(nn.Module):
    """y = tanh(x @ W^T + b).sum(dim=1, keepdim=True)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(x)).sum(dim=1, keepdim=True)


def get_inputs() -> list:
    return [torch.randn(batch_size, in_features) * 2.0]


def get_init_inputs() -> list:
    return [in_features, out_features]
