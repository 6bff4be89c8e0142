"""Square GEMM with bias, a residual add of the input, ReLU."""

import torch
import torch.nn as nn

batch_size = 2048
features = 4096


class Model(nn.Module):
    """y = relu(x @ W^T + b + x)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.fc = nn.Linear(features, features)
        with torch.no_grad():  # a projection as strong as the skip path
            self.fc.weight.normal_(0.0, features**-0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x) + x)


def get_inputs() -> list:
    return [torch.randn(batch_size, features)]


def get_init_inputs() -> list:
    return [features]
