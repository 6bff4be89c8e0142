"""Multi-head causal self-attention: fused QKV projection, masked softmax(QK^T / sqrt(d)) V, output projection."""

import math

import torch
import torch.nn as nn

batch_size = 8
seq_len = 512
num_heads = 8
head_dim = 64


class Model(nn.Module):
    """Causal multi-head self-attention over a (batch, seq_len, num_heads * head_dim) input."""

    def __init__(self, num_heads: int, head_dim: int, max_len: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim
        embed = num_heads * head_dim
        self.qkv = nn.Linear(embed, 3 * embed)
        self.proj = nn.Linear(embed, embed)
        with torch.no_grad():  # unit-variance projections so attention is sharp, not uniform
            self.qkv.weight.normal_(0.0, embed**-0.5)
            self.proj.weight.normal_(0.0, embed**-0.5)
        self.register_buffer("mask", torch.tril(torch.ones(max_len, max_len, dtype=torch.bool)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, e = x.shape
        q, k, v = self.qkv(x).split(e, dim=2)
        q = q.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
        k = k.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
        v = v.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)
        scores = scores.masked_fill(~self.mask[:t, :t], float("-inf"))
        attn = torch.softmax(scores, dim=-1)
        y = (attn @ v).transpose(1, 2).contiguous().view(b, t, e)
        return self.proj(y)


def get_inputs() -> list:
    return [torch.randn(batch_size, seq_len, num_heads * head_dim) * 2.0]


def get_init_inputs() -> list:
    return [num_heads, head_dim, seq_len]
