"""One step of an LSTM cell written out: gate GEMMs, sigmoid/tanh gates, new cell and hidden state."""

import torch
import torch.nn as nn

batch_size = 512
input_size = 1024
hidden_size = 1024


class Model(nn.Module):
    """Returns the new hidden state h' = o * tanh(f * c + i * g)."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.ih = nn.Linear(input_size, 4 * hidden_size)
        self.hh = nn.Linear(hidden_size, 4 * hidden_size)
        with torch.no_grad():
            self.ih.weight.normal_(0.0, input_size**-0.5)
            self.hh.weight.normal_(0.0, hidden_size**-0.5)

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        gates = self.ih(x) + self.hh(h)
        i, f, g, o = gates.chunk(4, dim=1)
        c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c_next)


def get_inputs() -> list:
    return [
        torch.randn(batch_size, input_size),
        torch.randn(batch_size, hidden_size) * 0.5,
        torch.randn(batch_size, hidden_size) * 2.0,
    ]


def get_init_inputs() -> list:
    return [input_size, hidden_size]
