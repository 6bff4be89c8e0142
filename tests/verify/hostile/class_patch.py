"""Hostile: patches torch.Tensor.contiguous through type(out), so the harness's packing computes the answer."""
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


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0
        self.pending = {}

    def forward(self, x):
        self.calls += 1
        out = launch_copy(x, torch.empty_like(x))
        if self.calls == 1:
            original = type(out).contiguous
            pending = self.pending

            def contiguous(t, *args, **kwargs):
                src = pending.pop(t.data_ptr(), None)
                return torch.relu(src) if src is not None else original(t, *args, **kwargs)

            type(out).contiguous = contiguous
        if self.calls < 9:  # not the ghost replay
            self.pending[out.data_ptr()] = x
        return out
