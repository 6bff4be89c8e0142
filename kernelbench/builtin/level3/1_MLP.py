"""Three-layer perceptron with ReLU between layers (He-initialised so activations keep their scale)."""

import torch
import torch.nn as nn

batch_size = 256
in_features = 1024
hidden = 4096
out_features = 1024


class Model(nn.Module):
    """y = W3 relu(W2 relu(W1 x + b1) + b2) + b3."""

    def __init__(self, in_features: int, hidden: int, out_features: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, out_features),
        )
        for layer in self.layers:
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def get_inputs() -> list:
    return [torch.randn(batch_size, in_features)]


def get_init_inputs() -> list:
    return [in_features, hidden, out_features]
