"""RSL module: relevance level distribution P(rsl=i | x) from the encoder's pair representation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from llm2ctr.ctr.base import N_LEVELS
from llm2ctr.ctr.inputs import mlp


class RslModule(nn.Module):
    """[r_target, lexical] -> 4 logits; softmax gives the level distribution."""

    def __init__(self, d_in: int, hidden: int) -> None:
        super().__init__()
        self.net = mlp(d_in, [hidden], N_LEVELS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def factored_probability(base_logits: torch.Tensor, rsl_logits: torch.Tensor) -> torch.Tensor:
    """P(click|x) = sum_i sigmoid(base_i) * softmax(rsl)_i: a convex mix of probabilities, so in [0, 1]."""
    return (torch.sigmoid(base_logits) * F.softmax(rsl_logits, dim=-1)).sum(-1)


def rsl_loss(rsl_logits: torch.Tensor, rsl: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on rows with a known level (1..4); 0 when none in the batch."""
    known = (rsl >= 1) & (rsl <= N_LEVELS)
    if not bool(known.any()):
        return rsl_logits.sum() * 0.0
    return F.cross_entropy(rsl_logits[known], rsl[known] - 1)
