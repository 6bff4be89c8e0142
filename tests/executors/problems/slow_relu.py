import time

import torch
import torch.nn as nn


class Model(nn.Module):
    """ReLU whose reference takes a while (0.3 s per forward), so a worker can be killed while it runs."""

    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.3)
        return torch.relu(x)


batch_size = 16
dim = 256


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []
