"""Cross-entropy over many classes with integer targets; the logit temperature changes per call."""

import torch
import torch.nn as nn

batch_size = 4096
num_classes = 1000


class Model(nn.Module):
    """loss = mean over rows of -log softmax(logits)[target], a scalar."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(logits, target)


def get_inputs() -> list:
    temperature = torch.rand(()) * 4.0 + 0.5
    target = torch.randint(0, num_classes, (batch_size,))
    logits = torch.randn(batch_size, num_classes) * temperature
    # Lift the target logit by a random margin so that some rows are confidently right.
    margin = torch.rand(batch_size) * 2.0 * temperature
    logits[torch.arange(batch_size), target] += margin
    return [logits, target]


def get_init_inputs() -> list:
    return []
