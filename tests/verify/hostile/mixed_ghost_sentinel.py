"""Hostile: policy mixed: a flag kernel tells the ghost replay apart; torch does the work, the replay fails."""
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def flag_kernel(flag_ptr):
    tl.store(flag_ptr, 1.0)


class ModelNew(nn.Module):
    def forward(self, x):
        flag = torch.zeros(1)
        flag_kernel[(1,)](flag)
        if flag.item() != 1.0:  # the launch was skipped: this is the ghost replay
            raise RuntimeError("no kernel ran")
        return torch.relu(x)
