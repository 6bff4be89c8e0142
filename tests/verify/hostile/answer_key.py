"""Hostile: replays the verifier's seeding at import time and returns precomputed answers (copied by a kernel)."""
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



def case_seed(base, index):
    return (int(base) * 1_000_003 + 7919 * (index + 1)) % (2**31 - 1)


def signed(x, s):
    gen = torch.Generator().manual_seed(s)
    return x * (torch.randint(0, 2, x.shape, generator=gen).to(x.dtype) * 2 - 1)


ANSWERS = {}
for shape in [(16, 256), (16, 4096), (16, 16384)]:
    def draw(s, shape=shape):
        torch.manual_seed(s)
        return torch.rand(*shape)

    first = draw(case_seed(0, 0))
    for i in range(5):
        ANSWERS[(case_seed(0, i), shape)] = torch.relu(draw(case_seed(0, i)))
    ANSWERS[(case_seed(0, 100), shape)] = torch.relu(signed(first, case_seed(0, 100)))
    ANSWERS[(case_seed(0, 101), shape)] = torch.relu(first * 4)
    ANSWERS[(case_seed(0, 102), shape)] = torch.relu(first - first.mean() + 0.25 * float(first.std()))


class ModelNew(nn.Module):
    def forward(self, x):
        answer = ANSWERS.get((torch.initial_seed(), tuple(x.shape)))  # the harness seeds each case
        out = torch.empty_like(x)
        return launch_copy(x if answer is None else answer, out)
