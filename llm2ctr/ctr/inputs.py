"""Shared input layers: hashed sparse embeddings and the per-pair context every ranker looks up."""

from __future__ import annotations

import torch
from torch import nn


class PairContext(nn.Module):
    """Per-pair tensors (text embeddings, query index, lexical features, item codes, tokens).

    Registered as non-persistent buffers: they are rebuilt from the data and the text cache, so a
    model checkpoint holds only learned weights.
    """

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        super().__init__()
        for k, v in tensors.items():
            self.register_buffer(k, v, persistent=False)

    @property
    def text_dim(self) -> int:
        return int(self.pair_emb.shape[1])

    @property
    def lex_dim(self) -> int:
        return int(self.lexical.shape[1])

    def has(self, name: str) -> bool:
        return hasattr(self, name) and getattr(self, name) is not None


class SparseEmbedding(nn.Module):
    """One hashed table for all fields (field name is part of the hash); [B, F] -> [B, F*dim]."""

    def __init__(self, buckets: int, dim: int, n_fields: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(buckets, dim)
        nn.init.normal_(self.emb.weight, 0.0, 0.01)
        self.out_dim = dim * n_fields

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.emb(ids).flatten(1)


def mlp(d_in: int, hidden: list[int], d_out: int) -> nn.Sequential:
    """Plain ReLU MLP (no dropout: every step is a deterministic function of the seed)."""
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(d_in, h), nn.ReLU()]
        d_in = h
    layers.append(nn.Linear(d_in, d_out))
    return nn.Sequential(*layers)


def dense_inputs(ctx: PairContext, batch: dict[str, torch.Tensor], lexical: bool = True,
                 oracle: bool = False) -> torch.Tensor:
    """Numeric columns, the pair's lexical match features (unless ablated) and, for the positive
    controls only, the simulator's true relevance sensitivity of the request."""
    parts = [batch["numeric"]]
    if lexical:
        parts.append(ctx.lexical[batch["pair_idx"]])
    if oracle:
        parts.append(batch["sens_true"].unsqueeze(-1).to(batch["numeric"].dtype))
    return torch.cat(parts, dim=1)


def dense_dim(ctx: PairContext, n_numeric: int, lexical: bool = True, oracle: bool = False) -> int:
    """Width of :func:`dense_inputs` (numeric columns + log history length + lexical + oracle)."""
    return n_numeric + 1 + (ctx.lex_dim if lexical else 0) + int(oracle)
