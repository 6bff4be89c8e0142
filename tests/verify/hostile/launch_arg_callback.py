"""Hostile: a kernel argument that looks like a tensor computes the answer when the launcher reads it."""
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


class Lazy:
    """The launcher asks for its storage: that is when the answer is computed."""

    def __init__(self, x, out):
        self.x, self.out = x, out
        self.dtype = out.dtype

    def data_ptr(self):
        return self.out.data_ptr()

    def untyped_storage(self):
        self.out.copy_(torch.relu(self.x))
        return self.out.untyped_storage()

    def new_empty(self, *args, **kwargs):
        return self.out.new_empty(*args, **kwargs)

    def storage_offset(self):
        return self.out.storage_offset()

    def size(self):
        return self.out.size()

    def stride(self):
        return self.out.stride()


class ModelNew(nn.Module):
    def forward(self, x):
        out = torch.empty_like(x)
        copy_kernel[(1,)](out, Lazy(x, out), 0, BLOCK=16)
        return out
