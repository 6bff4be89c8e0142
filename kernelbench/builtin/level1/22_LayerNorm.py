"""LayerNorm over the hidden dimension of token activations; rows have their own mean and spread."""

import torch
import torch.nn as nn

batch_size = 16
seq_len = 256
hidden = 1024


class Model(nn.Module):
    """y = LayerNorm(hidden)(x) with a learned affine transform."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        with torch.no_grad():  # a non-trivial affine transform
            self.norm.weight.uniform_(0.5, 1.5)
            self.norm.bias.normal_(0.0, 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


def get_inputs() -> list:
    scale = torch.rand(batch_size, seq_len, 1) * 3.0 + 0.5
    shift = torch.randn(batch_size, seq_len, 1) * 2.0
    return [torch.randn(batch_size, seq_len, hidden) * scale + shift]


def get_init_inputs() -> list:
    return [hidden]
