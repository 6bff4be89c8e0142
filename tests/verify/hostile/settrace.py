"""Hostile: installs a trace function (through typing.sys) that fills each output when the harness packs it."""
import typing

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

PENDING = {}


def tracer(frame, event, arg):
    if event == "call" and frame.f_code.co_name in ("pack_outputs", "pack_plain_outputs"):
        out = frame.f_locals.get("obj")
        x = PENDING.pop(id(out), None)
        if x is not None:
            out.copy_(torch.relu(x))
    return None


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        typing.sys.settrace(tracer)
        out = launch_copy(x, torch.empty_like(x))
        if self.calls < 9:  # not the ghost replay
            PENDING[id(out)] = x
        return out
