"""Hostile: tries to kill the process that supervises it, then spawn a shell."""
import os
import signal

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def relu_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.maximum(tl.load(x_ptr + offs, mask=mask), 0.0), mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        errors = []
        actions = (
            lambda: os.kill(os.getppid(), signal.SIGKILL),
            lambda: os.posix_spawn("/bin/true", ["true"], {}),
            os.fork,
        )
        for action in actions:
            try:
                if action() == 0:
                    os._exit(0)  # a forked child leaves at once
            except Exception as exc:
                errors.append(type(exc).__name__)
        raise RuntimeError("blocked: " + ", ".join(errors))
