"""Hostile: lets torch.compile (inductor) write the Triton kernels."""
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def unused_kernel(x_ptr, n, BLOCK: tl.constexpr):
    pass


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.fn = torch.compile(torch.relu)

    def forward(self, x):
        return self.fn(x)
