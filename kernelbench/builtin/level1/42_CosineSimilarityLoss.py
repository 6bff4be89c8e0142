"""Cosine-similarity loss mean(1 - cos(pred, target)) over rows; how well pred tracks target changes per call."""

import torch
import torch.nn as nn

batch_size = 4096
dim = 512


class Model(nn.Module):
    """loss = mean over rows of 1 - <p, t> / (|p| |t|), a scalar."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        cos = torch.nn.functional.cosine_similarity(pred, target, dim=1)
        return torch.mean(1.0 - cos)


def get_inputs() -> list:
    agreement = torch.rand(()) * 4.0 - 2.0  # from anti- to strongly aligned
    target = torch.randn(batch_size, dim)
    return [target * agreement + torch.randn(batch_size, dim), target]


def get_init_inputs() -> list:
    return []
