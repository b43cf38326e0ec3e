"""MoE relevance incentive: tau = w1 * softplus(E+) - w2 * softplus(E-), gate(r_user) -> [w1, w2].

E+ rewards, E- penalises; the gate, fed with the user's own history, decides per user how much
of each applies (a relevance-sensitive user leans on one expert). tau is in log-odds units.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from llm2ctr.ctr.inputs import mlp


class MoEIncentive(nn.Module):
    def __init__(self, user_dim: int, in_dim: int, hidden: int) -> None:
        super().__init__()
        self.gate = nn.Linear(user_dim, 2)
        self.e_pos = mlp(in_dim, [hidden], 1)
        self.e_neg = mlp(in_dim, [hidden], 1)

    def forward(self, r_user: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(tau [B], gate weights [B, 2])."""
        w = torch.softmax(self.gate(r_user), dim=-1)
        tau = w[:, 0] * F.softplus(self.e_pos(x).squeeze(-1)) - w[:, 1] * F.softplus(self.e_neg(x).squeeze(-1))
        return tau, w
