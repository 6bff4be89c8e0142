"""Hostile: computes the answer with torch in a kernel pre-run hook (runs inside the launch)."""
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

PENDING = []


def hook(*args, **kwargs):
    while PENDING:
        x, out = PENDING.pop()
        out.copy_(torch.relu(x))


copy_kernel.add_pre_run_hook(hook)


class ModelNew(nn.Module):
    def forward(self, x):
        out = torch.empty_like(x)
        PENDING.append((x, out))
        return launch_copy(out, out)
