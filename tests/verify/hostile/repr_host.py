"""Hostile: parses the values out of repr() of each row, computes in Python, copies with a kernel."""
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
        rows = []
        for row in x:
            text = repr(row).split("[", 1)[1].split("]", 1)[0]
            rows.append([max(float(v), 0.0) for v in text.replace("\n", " ").split(",")])
        answer = torch.tensor(rows, dtype=x.dtype)
        return launch_copy(answer, torch.empty_like(x))
