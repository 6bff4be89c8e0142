"""Pre-norm transformer feed-forward block: LayerNorm, up-projection, GELU, down-projection, residual."""

import torch
import torch.nn as nn

batch_size = 16
seq_len = 256
embed = 1024
expansion = 4


class Model(nn.Module):
    """y = x + W2 gelu(W1 layer_norm(x) + b1) + b2."""

    def __init__(self, embed: int, expansion: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(embed)
        self.up = nn.Linear(embed, expansion * embed)
        self.down = nn.Linear(expansion * embed, embed)
        with torch.no_grad():  # variance-preserving weights: the block changes x substantially
            self.up.weight.normal_(0.0, embed**-0.5)
            self.down.weight.normal_(0.0, 2.0 * (expansion * embed) ** -0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(torch.nn.functional.gelu(self.up(self.norm(x))))


def get_inputs() -> list:
    return [torch.randn(batch_size, seq_len, embed)]


def get_init_inputs() -> list:
    return [embed, expansion]
