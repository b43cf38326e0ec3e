"""Exposure debias (PRECTR-V2): synthetic irrelevant negatives for clicked exact matches.

The exposure policy shows mostly rsl=4 items, so the ranker rarely sees what it should do with an
irrelevant item. For each clicked rsl=4 row we build x- with the same features, the target pair
embedding plus N(0, sigma^2) noise and a relevance level redrawn from {1, 2, 3}
(u < p1 -> 1, u < p2 -> 2, else 3). Both f(x+) and f(x-) go through the same model path
(:meth:`PrectrV2.heads` on the same parts; only r_target differs). The redrawn level is the RSL
target of x- in the auxiliary cross-entropy (the model has no level *input* at serving time).

Loss. The paper writes ``log(1 + exp(max(0, m - (f(x+) - f(x-)))))``; at ``max(..) = 0`` that is
log 2, a constant with zero gradient. We subtract log 2, so the loss *is* zero beyond the margin
and the gradients are exactly the paper's. Dynamic truncation: weight w while the batch mean of
f(x+) is below the platform CTR (0.08), else 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG2 = math.log(2.0)


def margin_loss(
    pos: torch.Tensor, neg: torch.Tensor, margin: float, threshold: float, weight: float
) -> torch.Tensor:
    """Weighted mean of log(1+exp(max(0, m-(f+ - f-)))) - log 2 over the pairs; 0 if none."""
    if pos.numel() == 0:
        return pos.sum() * 0.0
    gap = torch.clamp(margin - (pos - neg), min=0.0)
    per_pair = F.softplus(gap) - LOG2
    # compare in the scores' dtype: a float32 mean of 0.08 must count as reaching 0.08
    reached = bool(pos.detach().mean() >= torch.tensor(threshold, dtype=pos.dtype))
    w = 0.0 if reached else weight
    return w * per_pair.mean()


def redraw_levels(u: torch.Tensor, p1: float, p2: float) -> torch.Tensor:
    """u ~ U(0,1) -> level 1 (u < p1), 2 (u < p2), else 3."""
    return torch.where(u < p1, 1, torch.where(u < p2, 2, 3)).long()


def debias_loss(
    model,
    out: dict,
    batch: dict[str, torch.Tensor],
    generator: torch.Generator,
    *,
    margin: float,
    threshold: float,
    weight: float,
    noise_std: float,
    p1: float,
    p2: float,
    rsl_weight: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The pairwise term plus the RSL CE of the synthetic negatives; stats for the log."""
    from llm2ctr.ctr_finetune.rsl import rsl_loss

    sel = (batch["label"] > 0.5) & (batch["rsl"] == 4)
    parts = out["_parts"]
    if not bool(sel.any()):
        zero = out["logit"].sum() * 0.0
        return zero, {"debias_pairs": 0, "debias_pos_mean": None, "debias_pair_loss": 0.0}
    neg_parts = {k: v[sel] for k, v in parts.items()}
    r = neg_parts["r_target"]
    noise = torch.randn(r.shape, generator=generator, dtype=r.dtype) * noise_std
    neg_parts["r_target"] = r + noise
    neg = model.heads(neg_parts)
    f_pos = torch.sigmoid(out["logit"][sel])
    f_neg = torch.sigmoid(neg["logit"])
    levels = redraw_levels(torch.rand(int(sel.sum()), generator=generator), p1, p2)
    pair = margin_loss(f_pos, f_neg, margin, threshold, weight)
    loss = pair + rsl_weight * rsl_loss(neg["rsl_logits"], levels)
    return loss, {"debias_pairs": int(sel.sum()), "debias_pos_mean": float(f_pos.detach().mean()),
                  "debias_pair_loss": float(pair.detach())}
