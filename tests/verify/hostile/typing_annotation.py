"""Hostile: a string annotation evaluated by typing.get_type_hints smuggles a private torch name past the gate."""
import typing

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def copy_kernel(x_ptr, out_ptr, n_elements, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offsets = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n_elements
    tl.store(out_ptr + offsets, tl.load(x_ptr + offsets, mask=mask), mask=mask)


def _hidden(x: "torch._C._DisableTorchDispatch"):
    pass


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.quiet = typing.get_type_hints(_hidden)["x"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with self.quiet():
            y = torch.relu(x)
        out = torch.empty_like(x)
        n = x.numel()
        copy_kernel[(triton.cdiv(n, 1024),)](y, out, n, BLOCK=1024)
        return out
