"""Hostile: replaces its result and outputs files with FIFOs and exits, so a parent that opens them hangs."""
import os

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

    def forward(self, x):
        self.calls += 1
        if self.calls == 9:
            for name in ("../outputs.pt", "../result.json", "../progress"):
                if os.path.exists(name):
                    os.unlink(name)
                os.mkfifo(name)
            os._exit(0)
        return launch_copy(x, torch.empty_like(x))
