"""Hostile: returns torch.empty memory, hoping it still holds a previous (reference) answer."""
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def nothing_kernel(out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(out_ptr + offs, tl.zeros((BLOCK,), dtype=tl.float32), mask=offs < 0)  # writes nothing


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        out = torch.empty_like(x)
        nothing_kernel[(1,)](out, x.numel(), BLOCK=16)
        return out
