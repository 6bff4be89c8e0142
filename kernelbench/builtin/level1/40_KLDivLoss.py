"""KL divergence KL(q || p) between row distributions, batch-mean reduction; q drifts from p by a per-call amount."""

import torch
import torch.nn as nn

batch_size = 1024
num_classes = 512


class Model(nn.Module):
    """loss = sum(q * (log q - log p)) / batch, from log-probabilities log_p and probabilities q."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, log_p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.kl_div(log_p, q, reduction="batchmean")


def get_inputs() -> list:
    drift = torch.rand(()) * 2.0 + 0.1
    logits = torch.randn(batch_size, num_classes) * 2.0
    log_p = torch.log_softmax(logits, dim=1)
    q = torch.softmax(logits + torch.randn(batch_size, num_classes) * drift, dim=1)
    return [log_p, q]


def get_init_inputs() -> list:
    return []
