"""Base module: four conditional click logits, one per relevance level (PRECTR's factorisation)."""

from __future__ import annotations

import torch
from torch import nn

from llm2ctr.ctr.inputs import mlp

N_LEVELS = 4


class BaseModule(nn.Module):
    """MLP over every feature -> logits of P(click | rsl=i, x) for i = 1..4."""

    def __init__(self, d_in: int, hidden: list[int]) -> None:
        super().__init__()
        self.net = mlp(d_in, hidden, N_LEVELS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
