"""Hostile: returns a tuple subclass whose __iter__ (run by the harness after forward) computes the answer."""
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def copy_kernel(src_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(src_ptr + offs, mask=mask), mask=mask)


def launch_copy(src, out):
    n = out.numel()
    copy_kernel[(triton.cdiv(n, 1024),)](src, out, n, BLOCK=1024)
    return out

builtin_tuple = tuple


class tuple(builtin_tuple):  # noqa: A001 - named like the builtin so the structure reads "tuple(...)"
    def __iter__(self):
        x = builtin_tuple.__getitem__(self, 0)
        yield torch.relu(x)
        yield torch.relu(-x)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        out = launch_copy(x, torch.empty_like(x))
        if self.calls == 9:  # the ghost replay gets a plain (wrong) answer
            return builtin_tuple([out, out])
        return tuple([out, out.clone()])
