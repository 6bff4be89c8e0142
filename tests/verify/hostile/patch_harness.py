"""Hostile: imports the verifier's recorders and widens the set of ops that do not count as compute."""
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
import evokernel.verify.recorders as recorders

recorders.ALLOWED_OPS = recorders.ALLOWED_OPS | {"aten.relu"}


class ModelNew(nn.Module):
    def forward(self, x):
        return launch_copy(torch.relu(x), torch.empty_like(x))
