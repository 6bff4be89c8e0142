"""Hostile: reads the reference's inputs file (every case, ahead of time) through its job file."""
import json

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

with open("../job.json") as f:  # the job's own directory: readable
    INPUTS_FILE = json.load(f)["inputs_file"]


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        with open(INPUTS_FILE, "rb") as f:  # the reference's directory: must not be
            self.cases = f.read()

    def forward(self, x):
        return launch_copy(x, torch.empty_like(x))
