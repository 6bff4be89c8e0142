"""Hostile: ends its own process during import, hoping an empty result reads as success."""
import os

import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def relu_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    pass


os._exit(0)


class ModelNew(nn.Module):
    pass
