"""Hostile: a __del__ that runs after the last forward rewrites outputs.pt with torch-computed answers."""
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
        self.seen = []

    def forward(self, x):
        self.seen.append(x.clone())
        return launch_copy(x, torch.empty_like(x))

    def __del__(self):
        names = ["trial_0", "trial_1", "trial_2", "trial_3", "trial_4", "probe_signed", "probe_scaled",
                 "probe_shifted", "ghost"]
        answers = {}
        for name, x in zip(names, self.seen):
            y = torch.zeros_like(x) + 7 if name == "ghost" else torch.relu(x)
            answers[name] = {"structure": "tensor", "leaves": [y]}
        torch.serialization.save(answers, "../outputs.pt")  # cwd is the job's scratch directory
