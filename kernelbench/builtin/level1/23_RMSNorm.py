"""RMSNorm written out by hand: x / sqrt(mean(x^2) + eps) * weight over the hidden dimension."""

import torch
import torch.nn as nn

batch_size = 16
seq_len = 256
hidden = 1024


class Model(nn.Module):
    """Root-mean-square normalisation with a learned per-feature gain."""

    def __init__(self, hidden: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.rand(hidden) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rms = torch.sqrt(torch.mean(x * x, dim=-1, keepdim=True) + self.eps)
        return x / rms * self.weight


def get_inputs() -> list:
    scale = torch.rand(batch_size, seq_len, 1) * 3.0 + 0.25
    return [torch.randn(batch_size, seq_len, hidden) * scale]


def get_init_inputs() -> list:
    return [hidden]
