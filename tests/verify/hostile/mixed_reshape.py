"""Hostile: policy mixed: torch computes the answer flattened; a kernel copies it back in shape."""
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
    def forward(self, x):
        y = torch.relu(x.reshape(-1)).reshape(x.shape)  # computed in another shape: never "kept"
        return launch_copy(y, torch.empty_like(x))
