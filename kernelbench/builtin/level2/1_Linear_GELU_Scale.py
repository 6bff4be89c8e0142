"""GEMM with bias, then GELU, then a constant scale (a typical MLP up-projection epilogue)."""

import torch
import torch.nn as nn

batch_size = 1024
in_features = 4096
out_features = 4096


class Model(nn.Module):
    """y = gelu(x @ W^T + b) * scale."""

    def __init__(self, in_features: int, out_features: int, scale: float) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, out_features)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.gelu(self.fc(x)) * self.scale


def get_inputs() -> list:
    return [torch.randn(batch_size, in_features) * 3.0]


def get_init_inputs() -> list:
    return [in_features, out_features, 1.5]
