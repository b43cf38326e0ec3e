"""Long-history user tower: K learned query tokens read the whole history, the target reads them.

Target attention over a 1,000-behaviour history per impression is O(N) but its keys must be
re-projected per impression; a self-attention encoder over it is O(N^2). The Q-Former way: a
fixed set of K learned query tokens cross-attends to the N behaviours (O(N*K), independent of the
target, so computed once per distinct history in a batch), and the current query then attends
over the K summaries (O(K))::

    s_k  = sum_n softmax_n(q_k . W_k b_n / sqrt(d)) W_v b_n          k = 1..K   (masked padding)
    r    = TargetAttention(query, {s_k})
    b_n  = W_b pair_emb(n) + outcome(click_n, level_n) + recency(n)

``recency`` is a learned embedding of log2(1 + behaviours since), so a recent behaviour can weigh
more than one from a thousand steps ago. The tower also returns each behaviour's effective
weight (target weights over K x each token's weights over N), from which PRECTR-V2 reads the
attended click-by-level shares exactly as it does for the truncated sequence.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from llm2ctr.ctr.attention import TargetAttention
from llm2ctr.ctr.long_history import last_behaviours

N_OUTCOMES = 10  # (click 0/1) x (level 0 = unknown, 1..4), as PRECTR-V2's SequenceEncoder
N_RECENCY = 12  # log2 buckets: up to 2^11 behaviours back


class LongHistoryTower(nn.Module):
    """(ctx, long_start [B], long_end [B], query [B, d]) -> r_user [B, dim], weights [B, L], outcomes [B, L]."""

    def __init__(self, text_dim: int, dim: int, length: int, n_queries: int, heads: int) -> None:
        super().__init__()
        self.length, self.dim = length, dim
        self.behaviour = nn.Linear(text_dim, dim)
        self.outcome = nn.Embedding(N_OUTCOMES, dim)
        self.recency = nn.Embedding(N_RECENCY, dim)
        self.queries = nn.Parameter(torch.randn(n_queries, dim) * 0.02)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.target = TargetAttention(text_dim, dim, dim, dim, heads)

    def summaries(self, ctx, start: torch.Tensor, end: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """K summaries [H, K, dim], cross weights [H, K, L], outcomes [H, L], mask [H, L] per history."""
        pos, mask = last_behaviours(start, end, self.length)
        if ctx.beh_pidx.numel() == 0:  # an empty log: every history is empty
            mask = torch.zeros_like(mask)
            pos = torch.zeros_like(pos)
            pidx = torch.zeros_like(pos)
            clicks = rsl = torch.zeros_like(pos)
        else:
            pidx, clicks, rsl = ctx.beh_pidx[pos], ctx.beh_clicks[pos], ctx.beh_rsl[pos]
        outcome = clicks.clamp(0, 1) * 5 + rsl.clamp(0, 4)
        back = torch.arange(self.length - 1, -1, -1, device=pos.device)  # 0 = the most recent
        recency = torch.log2(back.float() + 1).floor().long().clamp(max=N_RECENCY - 1)
        # b = W_b pair + outcome + recency is linear, and so are its keys and values: map each distinct
        # pair, outcome and recency bucket once and gather (H x L additions instead of H x L matmuls)
        uniq, inv = torch.unique(pidx.clamp(min=0), return_inverse=True)
        base = self.behaviour(ctx.pair_emb[uniq])
        keys = self.k(base)[inv] + (self.outcome.weight @ self.k.weight.T)[outcome] + \
            (self.recency.weight @ self.k.weight.T)[recency][None]
        values = self.v(base)[inv] + (self.outcome.weight @ self.v.weight.T)[outcome] + \
            (self.recency.weight @ self.v.weight.T)[recency][None]
        scores = torch.einsum("kd,hld->hkl", self.queries, keys) / math.sqrt(self.dim)
        scores = scores.masked_fill(~mask[:, None, :], -1e9)
        w = torch.softmax(scores, dim=-1) * mask[:, None, :].to(scores.dtype)
        return w @ values, w, outcome, mask

    def forward(self, ctx, start: torch.Tensor, end: torch.Tensor, query: torch.Tensor):
        # rows of one request (or one user at one time) share a history: summarise each once
        n = (end - start).clamp(min=0, max=self.length)
        key = end * (self.length + 1) + n
        uniq, inv = torch.unique(key, return_inverse=True)
        first = torch.zeros_like(uniq).scatter_(0, inv, torch.arange(len(key), device=key.device))
        s, w_cross, outcome, mask = self.summaries(ctx, start[first], end[first])
        has_any = mask.any(dim=1)[inv]
        tokens = has_any[:, None].expand(-1, s.shape[1])
        r, w_target = self.target(query, s[inv], s[inv], tokens)
        w_eff = (w_target.unsqueeze(-1) * w_cross[inv]).sum(1)  # [B, L]
        return r, w_eff, outcome[inv]
