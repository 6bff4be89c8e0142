"""Hostile: a decoy kernel is launched (it copies into a scratch buffer) beside a torch fallback."""
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def decoy_kernel(x_ptr, scratch_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(scratch_ptr + offs, tl.load(x_ptr + offs, mask=mask), mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        scratch = torch.empty_like(x)
        n = x.numel()
        decoy_kernel[(triton.cdiv(n, 1024),)](x, scratch, n, BLOCK=1024)
        return torch.relu(x)
