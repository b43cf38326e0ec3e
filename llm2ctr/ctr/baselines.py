"""Baselines (LR, DNN, Wide&Deep, DIN) and the PRECTR / PRECTR-V2 variants, by name.

Every model takes the same batch and returns at least ``{"logit": [B]}``; PRECTR variants add
the factored probability, tau, the gate and the RSL logits. All of them see the lexical match
features (they are cheap and strong); PRECTR variants and QIN (qin.py) see the text encoder.
"""

from __future__ import annotations

import torch
from torch import nn

from llm2ctr.ctr.attention import TargetAttention
from llm2ctr.ctr.features import FeatureSpec
from llm2ctr.ctr.inputs import PairContext, SparseEmbedding, dense_dim, dense_inputs, mlp
from llm2ctr.ctr.prectr import PrectrV2
from llm2ctr.ctr.qformer import LongHistoryTower
from llm2ctr.ctr.qin import QIN
from llm2ctr.ctr.registry import DEFAULT_SUITE, REGISTRY, ModelSpec, get_spec
from llm2ctr.errors import ArtifactError

__all__ = ["DEFAULT_SUITE", "REGISTRY", "ModelSpec", "build_model", "get_spec"]


class LogisticRegression(nn.Module):
    def __init__(self, ctx: PairContext, spec: FeatureSpec, lexical: bool = True) -> None:
        super().__init__()
        self.ctx, self.lexical = ctx, lexical
        self.w_sparse = nn.Embedding(spec.buckets, 1)
        nn.init.zeros_(self.w_sparse.weight)
        self.w_dense = nn.Linear(dense_dim(ctx, len(spec.numeric_fields), lexical), 1)
        nn.init.zeros_(self.w_dense.weight)  # a convex model: start at the base rate, not at noise

    def init_output_bias(self, logit: float) -> None:
        nn.init.constant_(self.w_dense.bias, logit)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        s = self.w_sparse(batch["sparse"]).sum((1, 2))
        return {"logit": s + self.w_dense(dense_inputs(self.ctx, batch, self.lexical)).squeeze(-1)}


class DNN(nn.Module):
    def __init__(self, ctx: PairContext, spec: FeatureSpec, sparse_dim: int, hidden: list[int], extra: int = 0,
                 lexical: bool = True, oracle: bool = False) -> None:
        super().__init__()
        self.ctx, self.lexical, self.oracle = ctx, lexical, oracle
        self.sparse = SparseEmbedding(spec.buckets, sparse_dim, len(spec.sparse_fields))
        d_in = self.sparse.out_dim + dense_dim(ctx, len(spec.numeric_fields), lexical, oracle) + extra
        self.net = mlp(d_in, hidden, 1)

    def init_output_bias(self, logit: float) -> None:
        nn.init.constant_(self.net[-1].bias, logit)

    def inputs(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        dense = dense_inputs(self.ctx, batch, self.lexical, self.oracle)
        return torch.cat([self.sparse(batch["sparse"]), dense], dim=1)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"logit": self.net(self.inputs(batch)).squeeze(-1)}


class WideDeep(nn.Module):
    def __init__(self, ctx: PairContext, spec: FeatureSpec, sparse_dim: int, hidden: list[int],
                 lexical: bool = True) -> None:
        super().__init__()
        self.wide = LogisticRegression(ctx, spec, lexical)
        self.deep = DNN(ctx, spec, sparse_dim, hidden, lexical=lexical)

    def init_output_bias(self, logit: float) -> None:
        self.wide.init_output_bias(logit)  # the deep part's output bias stays at its small init
        nn.init.zeros_(self.deep.net[-1].bias)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"logit": self.wide(batch)["logit"] + self.deep(batch)["logit"]}


class DIN(nn.Module):
    """Deep Interest Network style: the target item id attends over the history's item ids."""

    def __init__(self, ctx: PairContext, spec: FeatureSpec, sparse_dim: int, hidden: list[int], attn_dim: int,
                 lexical: bool = True) -> None:
        super().__init__()
        self.ctx = ctx
        self.item = nn.Embedding(spec.buckets, attn_dim)
        nn.init.normal_(self.item.weight, 0.0, 0.01)
        self.click = nn.Embedding(2, attn_dim)
        self.att = TargetAttention(attn_dim, attn_dim, attn_dim, attn_dim, 1)
        self.dnn = DNN(ctx, spec, sparse_dim, hidden, extra=2 * attn_dim, lexical=lexical)

    def init_output_bias(self, logit: float) -> None:
        self.dnn.init_output_bias(logit)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        codes = self.ctx.item_code
        target = self.item(codes[batch["pair_idx"]])
        pidx = batch["hist_pidx"]
        mask = pidx >= 0
        hist = self.item(codes[pidx.clamp(min=0)])
        v = hist + self.click(batch["hist_clicks"].clamp(0, 1))
        pooled, _ = self.att(target, hist, v, mask)
        x = torch.cat([self.dnn.inputs(batch), target, pooled], dim=1)
        return {"logit": self.dnn.net(x).squeeze(-1)}


def build_model(
    spec: ModelSpec,
    ctx: PairContext,
    fspec: FeatureSpec,
    cfg,
    encoder: nn.Module | None = None,
) -> nn.Module:
    """Instantiate ``spec``; ``encoder`` is the student (only for fine-tuned / random variants)."""
    hidden, lex = list(cfg.hidden_dims), spec.lexical
    if spec.kind == "lr":
        return LogisticRegression(ctx, fspec, lex)
    if spec.kind == "dnn":
        return DNN(ctx, fspec, cfg.sparse_dim, hidden, lexical=lex, oracle=spec.oracle)
    if spec.kind == "wide_deep":
        return WideDeep(ctx, fspec, cfg.sparse_dim, hidden, lex)
    if spec.kind == "din":
        return DIN(ctx, fspec, cfg.sparse_dim, hidden, cfg.attn_dim, lex)
    if spec.kind == "qin":
        return QIN(ctx, fspec, cfg.sparse_dim, hidden, cfg.attn_dim, cfg.qin_top_k, lex)
    if spec.kind == "prectr":
        live = spec.encoder in ("finetune", "random") and not cfg.freeze_encoder
        tower = None
        if spec.long_history:
            if not ctx.has("beh_pidx"):
                raise ArtifactError(f"model {spec.name} reads the behaviour log (features/behaviours.safetensors), "
                                 "which these features lack; re-run `llm2ctr ctr train` to rebuild them")
            tower = LongHistoryTower(ctx.text_dim, cfg.attn_dim, cfg.long_history_len, cfg.long_history_queries,
                                     cfg.attn_heads)
        return PrectrV2(
            ctx,
            fspec,
            cfg.sparse_dim,
            hidden,
            cfg.attn_dim,
            cfg.attn_heads,
            use_cross=spec.use_cross,
            encoder=encoder if live else None,
            lexical=lex,
            user_tower=tower,
        )
    raise ValueError(f"model {spec.name}: unknown kind {spec.kind!r}")
