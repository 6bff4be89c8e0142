"""Hostile: a kernel body calls a plain Python function that computes with torch (interpreter only)."""
import torch
import torch.nn as nn
import triton
import triton.language as tl

STASH = []


def helper():
    x, out = STASH.pop()
    out.copy_(torch.relu(x))
    return 0


@triton.jit
def body_kernel(out_ptr, n, BLOCK: tl.constexpr):
    helper()
    offs = tl.arange(0, BLOCK)
    tl.store(out_ptr + offs, tl.load(out_ptr + offs, mask=offs < n), mask=offs < n)


class ModelNew(nn.Module):
    def forward(self, x):
        out = torch.empty_like(x)
        STASH.append((x, out))
        body_kernel[(1,)](out, 0, BLOCK=16)
        return out
