"""Multi-head target attention: the current query attends over a behaviour sequence.

Q is the current query's embedding, K the embeddings of the historical queries, V the historical
query-item relevance embeddings (pair embedding + click + level). Padded positions are masked;
a user with no behaviours gets a zero vector (not a softmax over padding).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class TargetAttention(nn.Module):
    """[B, dq], [B, L, dk], [B, L, dv], mask [B, L] -> [B, dim]."""

    def __init__(self, q_dim: int, k_dim: int, v_dim: int, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention dim {dim} must be divisible by heads {heads}")
        self.heads, self.dim = heads, dim
        self.q = nn.Linear(q_dim, dim)
        self.k = nn.Linear(k_dim, dim)
        self.v = nn.Linear(v_dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        mask: torch.Tensor,
        bias: torch.Tensor | None = None,
        projected: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The attended vector and the head-averaged attention weights [B, L].

        ``projected``: k and v are already mapped by ``self.k`` / ``self.v`` (see :meth:`project_rows`).
        """
        b, length, _ = k.shape
        h, dh = self.heads, self.dim // self.heads
        qh = self.q(q).view(b, h, 1, dh)
        if not projected:
            k, v = self.k(k), self.v(v)
        kh = k.reshape(b, length, h, dh).transpose(1, 2)
        vh = v.reshape(b, length, h, dh).transpose(1, 2)
        scores = (qh @ kh.transpose(-1, -2)).squeeze(2) / math.sqrt(dh)  # [B, h, L]
        if bias is not None:
            scores = scores + bias[:, None, :]
        scores = scores.masked_fill(~mask[:, None, :], -1e9)
        w = torch.softmax(scores, dim=-1) * mask[:, None, :].to(scores.dtype)
        ctx = (w.unsqueeze(2) @ vh).reshape(b, self.dim)
        has_any = mask.any(dim=1, keepdim=True).to(ctx.dtype)
        return self.out(ctx) * has_any, w.mean(1)


def project_rows(linear: nn.Linear, table: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``linear(table[rows])`` computed once per distinct row: a behaviour sequence of B x L positions
    repeats a few thousand pairs, so projecting those and gathering is ~10x less work (measured on
    the quickstart ranker: docs/ranker.md). Exact up to float summation order."""
    uniq, inv = torch.unique(rows, return_inverse=True)
    return linear(table[uniq])[inv]
