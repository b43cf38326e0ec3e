"""PRECTR-V2: factored click probability, cold-start preference mining, MoE incentive.

Final score (why this formula): the article's sample code multiplies tau by P(click), which goes
negative when tau < 0 and is no probability, so PCOC and logloss are meaningless. We add tau in
log-odds space instead::

    score = sigmoid(logit(P(click|x)) + tau),   P(click|x) = sum_i P(click|rsl=i,x) P(rsl=i|x)

It is in (0, 1) for any tau, equals P when tau = 0, is monotone in both P and tau (a positive
incentive always raises the score), and trains with the numerically stable BCE-with-logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from llm2ctr.ctr.attention import TargetAttention, project_rows
from llm2ctr.ctr.base import BaseModule
from llm2ctr.ctr.features import FeatureSpec
from llm2ctr.ctr.inputs import PairContext, SparseEmbedding, dense_dim, dense_inputs
from llm2ctr.ctr.moe import MoEIncentive
from llm2ctr.ctr.rsl import RslModule, factored_probability

EPS = 1e-6


def final_logit(p: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """logit(P) + tau; sigmoid of it is the final score (in (0,1), = P when tau = 0)."""
    p = p.clamp(EPS, 1 - EPS)
    return torch.log(p) - torch.log1p(-p) + tau


class SequenceEncoder(nn.Module):
    """Builds K and V for a behaviour sequence from cached pair/query embeddings.

    The outcome of a behaviour is one embedding per (click, level) combination, not a sum of a
    click and a level embedding: how clicks depend on relevance (the user's sensitivity) is a
    property of the joint, which a sum pooled by attention cannot express.
    """

    N_OUTCOMES = 2 * 5  # (click 0/1) x (level 0 = unknown, 1..4)

    def __init__(self, text_dim: int, extra: int = 8) -> None:
        super().__init__()
        self.outcome = nn.Embedding(self.N_OUTCOMES, extra)
        self.v_dim = text_dim + extra

    def forward(self, ctx: PairContext, pidx: torch.Tensor, clicks: torch.Tensor, rsl: torch.Tensor):
        """K, V, mask and each behaviour's outcome index (click x level)."""
        mask = pidx >= 0
        p = pidx.clamp(min=0)
        k = ctx.query_emb[ctx.pair_query[p]]
        outcome = clicks.clamp(0, 1) * 5 + rsl.clamp(0, 4)
        v = torch.cat([ctx.pair_emb[p], self.outcome(outcome)], dim=-1)
        return k, v, mask, outcome

    def projected(self, att: TargetAttention, ctx: PairContext, pidx: torch.Tensor, clicks: torch.Tensor,
                  rsl: torch.Tensor):
        """:meth:`forward` with K and V already through ``att``'s k and v maps, each distinct query,
        pair and outcome projected once (V = W [pair; outcome] + b = W_p pair + W_o outcome + b)."""
        mask = pidx >= 0
        p = pidx.clamp(min=0)
        outcome = clicks.clamp(0, 1) * 5 + rsl.clamp(0, 4)
        k = project_rows(att.k, ctx.query_emb, ctx.pair_query[p])
        d = ctx.text_dim
        w = att.v.weight
        uniq, inv = torch.unique(p, return_inverse=True)
        v = (ctx.pair_emb[uniq] @ w[:, :d].T)[inv] + (self.outcome.weight @ w[:, d:].T)[outcome] + att.v.bias
        return k, v, mask, outcome


def attended_outcomes(weights: torch.Tensor, outcome: torch.Tensor) -> torch.Tensor:
    """[B, 10]: the attention-weighted share of each (click, level) outcome among the behaviours.

    The same attention weights applied to one-hot outcomes: how often the behaviours the current
    query attends to were clicked, per relevance level (e.g. similar queries' recent click rate on
    exact matches). It is in V already, but mixed into 136 dimensions a small MLP learns to read
    it slowly; given explicitly it is one linear read (measured: docs/ranker.md). Zero when empty.
    """
    one_hot = F.one_hot(outcome, SequenceEncoder.N_OUTCOMES).to(weights.dtype)
    return (weights.unsqueeze(-1) * one_hot).sum(1)


class PrectrV2(nn.Module):
    """The full ranker. ``use_cross`` off = no cold-start mining (r_cate = 0); ``encoder`` None = frozen
    (r_target read from the cache); otherwise the encoder runs on the target pair with gradients."""

    def __init__(
        self,
        ctx: PairContext,
        spec: FeatureSpec,
        sparse_dim: int,
        hidden: list[int],
        attn_dim: int,
        attn_heads: int,
        use_cross: bool = True,
        use_moe: bool = True,
        encoder: nn.Module | None = None,
        lexical: bool = True,
        user_tower: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.ctx = ctx
        self.user_tower = user_tower  # None: target attention over the inline (truncated) history
        self.encoder = encoder
        self.encoder_live = encoder is not None  # the trainer may start with the cache (unfreeze later)
        self._tuned: torch.Tensor | None = None
        self.use_cross, self.use_moe, self.lexical = use_cross, use_moe, lexical
        d = ctx.text_dim
        lex_dim = ctx.lex_dim if lexical else 0
        self.sparse = SparseEmbedding(spec.buckets, sparse_dim, len(spec.sparse_fields))
        self.seq = SequenceEncoder(d)
        self.att_user = TargetAttention(d, d, self.seq.v_dim, attn_dim, attn_heads)
        self.att_cate = TargetAttention(d, d, self.seq.v_dim, attn_dim, attn_heads)
        self.sim_scale = nn.Parameter(torch.ones(()))
        n_dense = dense_dim(ctx, len(spec.numeric_fields), lexical=False)
        self.target_proj = nn.Linear(d, attn_dim)
        r_dim = attn_dim + SequenceEncoder.N_OUTCOMES  # attention output + attended outcome shares
        d_base = self.sparse.out_dim + n_dense + lex_dim + attn_dim + 2 * r_dim
        self.base = BaseModule(d_base, hidden)
        self.rsl = RslModule(d + lex_dim, hidden[-1])
        self.moe = MoEIncentive(r_dim, attn_dim + 2 * r_dim, hidden[-1])

    def init_output_bias(self, logit: float) -> None:
        """Every level's conditional click logit starts at the base rate (then tau = 0 gives it)."""
        nn.init.constant_(self.base.net[-1].bias, logit)

    def target_repr(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """r_target [B, d]: live encoder (each distinct pair once per batch) or the cache."""
        idx = batch["pair_idx"]
        if self.encoder is None or not self.encoder_live:
            return self.ctx.pair_emb[idx]
        if not self.training and self._tuned is not None:
            return self._tuned[idx]
        from llm2ctr.ctr.text import encode_rows

        uniq, inv = torch.unique(idx, return_inverse=True)
        tokens = {k: getattr(self.ctx, f"tok_{k}") for k in ("input_ids", "token_type_ids", "attention_mask")}
        return encode_rows(self.encoder, tokens, uniq)[inv]

    @torch.no_grad()
    def cache_targets(self, batch_size: int = 512) -> None:
        """Encode every pair once with the (fine-tuned) encoder for inference instead of once per
        impression. Cleared by ``train()``."""
        if self.encoder is None:
            return
        from llm2ctr.ctr.text import encode_all

        toks = {k: getattr(self.ctx, f"tok_{k}") for k in ("input_ids", "token_type_ids", "attention_mask")}
        self._tuned = encode_all(self.encoder, toks, batch_size, "encode pairs (fine-tuned)")

    def train(self, mode: bool = True) -> PrectrV2:
        """The encoder stays in eval mode (no dropout): every step is a function of the seed."""
        super().train(mode)
        if mode:
            self._tuned = None
        if self.encoder is not None:
            self.encoder.eval()
        return self

    def parts(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Everything the heads need; debias perturbs r_target here and re-runs :meth:`heads`."""
        ctx = self.ctx
        q = ctx.query_emb[ctx.pair_query[batch["pair_idx"]]]
        if self.user_tower is not None:
            r_user, w, outcome = self.user_tower(ctx, batch["long_start"], batch["long_end"], q)
        else:
            k, v, m, outcome = self.seq.projected(self.att_user, ctx, batch["hist_pidx"], batch["hist_clicks"],
                                                  batch["hist_rsl"])
            r_user, w = self.att_user(q, k, v, m, projected=True)
        r_user = torch.cat([r_user, attended_outcomes(w, outcome)], dim=1)
        if self.use_cross:
            k, v, m, outcome = self.seq.projected(self.att_cate, ctx, batch["cross_pidx"], batch["cross_clicks"],
                                                  batch["cross_rsl"])
            r_cate, w = self.att_cate(q, k, v, m, bias=self.sim_scale * batch["cross_sim"], projected=True)
            r_cate = torch.cat([r_cate, attended_outcomes(w, outcome)], dim=1)
        else:
            r_cate = torch.zeros_like(r_user)
        wide = torch.cat([self.sparse(batch["sparse"]), dense_inputs(ctx, batch, lexical=False)], dim=1)
        idx = batch["pair_idx"]
        return {
            "wide": wide,
            "lex": ctx.lexical[idx] if self.lexical else ctx.lexical[idx, :0],
            "r_target": self.target_repr(batch),
            "r_user": r_user,
            "r_cate": r_cate,
        }

    def candidate_parts(self, parts: dict[str, torch.Tensor], batch: dict[str, torch.Tensor],
                        cand: torch.Tensor) -> dict[str, torch.Tensor]:
        """Parts of each row's candidate items ``cand`` [B, K] (pair rows, >= 0), flattened to B*K:
        the same user, query, context and sequences, every item-level input swapped (HCCP)."""
        from llm2ctr.ctr.hybrid_samples import swap_item_inputs

        b, k = cand.shape
        sparse, numeric = swap_item_inputs(self.ctx, batch["sparse"], batch["numeric"], cand)
        wide = torch.cat([self.sparse(sparse.reshape(b * k, -1)), numeric.reshape(b * k, -1)], dim=1)
        flat = cand.reshape(-1)
        out = {name: parts[name].repeat_interleave(k, dim=0) for name in ("r_user", "r_cate")}
        out["wide"] = wide
        out["lex"] = self.ctx.lexical[flat] if self.lexical else self.ctx.lexical[flat, :0]
        # the candidates' text through the live encoder without gradients: the same representation
        # as the click's (no drift between a fine-tuned positive and a cached negative) at a third
        # of the cost; the contrast trains the ranker's heads and, through the click, the encoder
        with torch.no_grad():
            out["r_target"] = self.target_repr({"pair_idx": flat})
        return out

    def heads(self, parts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        t = self.target_proj(parts["r_target"])
        base_logits = self.base(torch.cat([parts["wide"], parts["lex"], t, parts["r_user"], parts["r_cate"]], dim=1))
        rsl_logits = self.rsl(torch.cat([parts["r_target"], parts["lex"]], dim=1))
        p = factored_probability(base_logits, rsl_logits)
        if self.use_moe:
            tau, gate = self.moe(parts["r_user"], torch.cat([parts["r_user"], parts["r_cate"], t], dim=1))
        else:
            tau, gate = torch.zeros_like(p), torch.zeros((p.shape[0], 2), device=p.device)
        return {"logit": final_logit(p, tau), "p_factored": p, "tau": tau, "gate": gate, "rsl_logits": rsl_logits}

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        parts = self.parts(batch)
        out = self.heads(parts)
        out["_parts"] = parts  # type: ignore[assignment]
        return out
