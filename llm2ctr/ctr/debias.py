"""Exposure debias (PRECTR-V2): synthetic lower-relevance negatives for clicked exact matches.

The exposure policy shows mostly rsl=4 items, so the ranker rarely sees what it should do with an
irrelevant item. For each clicked rsl=4 row we build x- with the same user, context and item-id
features and a relevance level redrawn from {1, 2, 3} (u < p1 -> 1, u < p2 -> 2, else 3). Every
input that carries relevance is changed consistently with that level:

- r_target (the encoder's pair embedding) gets Gaussian noise scaled to the embedding itself:
  per dimension sd = ``noise_std`` x the row's RMS entry (the paper's N(0, 1) assumes unit-scale
  entries; unscaled N(0, 1) on a small-norm embedding drowns it, and the model learns to detect
  noise rather than irrelevance);
- the lexical match features are those of a real pair at the redrawn level: of the same query
  when it has one, else of the same category, else of any query (:func:`matching_lower_pairs`).

f(x+) and f(x-) come from the same model path (:meth:`PrectrV2.heads` on the same parts). The
redrawn level is the RSL target of x- in the auxiliary cross-entropy.

Loss. The paper writes ``log(1 + exp(max(0, m - (f(x+) - f(x-)))))``; at ``max(..) = 0`` that is
log 2, a constant with zero gradient. We subtract log 2, so the loss *is* zero beyond the margin
and the gradients are exactly the paper's. Truncation: the paper weights the term by w while the
*batch mean* of f(x+) is below the platform CTR (0.08), else 0. Clicked exact matches score well
above the platform CTR on average, so that rule switches the term off in nearly every batch
(measured: docs/ranker.md). The default here is the same rule *per sample* (w for the pairs whose
own f(x+) is below the threshold: the clicked exact matches the model still under-scores);
``ctr.debias_truncation=batch`` keeps the paper's rule.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from llm2ctr.errors import ConfigError

LOG2 = math.log(2.0)
TRUNCATIONS = ("sample", "batch")


def truncation_weights(pos: torch.Tensor, threshold: float, weight: float, rule: str = "sample") -> torch.Tensor:
    """Per-pair weight: w where f(x+) (per sample, or the batch mean) is below the threshold, else 0."""
    if rule not in TRUNCATIONS:
        raise ConfigError(f"ctr.debias_truncation={rule!r}: expected one of {TRUNCATIONS}")
    # compare in the scores' dtype: a float32 score of 0.08 must count as reaching 0.08
    thr = torch.tensor(threshold, dtype=pos.dtype)
    below = pos.detach() < thr if rule == "sample" else (pos.detach().mean() < thr).expand(pos.shape)
    return below.to(pos.dtype) * weight


def margin_loss(pos: torch.Tensor, neg: torch.Tensor, margin: float, threshold: float, weight: float,
                rule: str = "sample") -> torch.Tensor:
    """Mean over the pairs of w(x) * (log(1+exp(max(0, m-(f+ - f-)))) - log 2); 0 if no pairs."""
    if pos.numel() == 0:
        return pos.sum() * 0.0
    gap = torch.clamp(margin - (pos - neg), min=0.0)
    return (truncation_weights(pos, threshold, weight, rule) * (F.softplus(gap) - LOG2)).mean()


def redraw_levels(u: torch.Tensor, p1: float, p2: float) -> torch.Tensor:
    """u ~ U(0,1) -> level 1 (u < p1), 2 (u < p2), else 3."""
    return torch.where(u < p1, 1, torch.where(u < p2, 2, 3)).long()


def _pick(keys: np.ndarray, level_rows: np.ndarray, want: np.ndarray, u: np.ndarray) -> np.ndarray:
    """For each wanted key, a uniformly chosen row of ``level_rows`` with that key, or -1."""
    if len(level_rows) == 0:
        return np.full(len(want), -1, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    sorted_keys, sorted_rows = keys[order], level_rows[order]
    lo, hi = np.searchsorted(sorted_keys, want, "left"), np.searchsorted(sorted_keys, want, "right")
    n = hi - lo
    idx = np.minimum(lo + (u * n).astype(np.int64), len(sorted_rows) - 1)
    return np.where(n > 0, sorted_rows[idx], -1)


def matching_lower_pairs(query_index: np.ndarray, category: np.ndarray, rsl: np.ndarray, seed: int = 0) -> np.ndarray:
    """[P, 3] pair row at level 1, 2, 3 for each pair: same query, else same category, else any; -1 if none.

    Drawn once (seeded) per pair and level, so two clicked pairs of one query get different negatives.
    """
    rng = np.random.default_rng([int(seed), 7331])
    n = len(rsl)
    out = np.full((n, 3), -1, dtype=np.int64)
    for level in (1, 2, 3):
        rows = np.flatnonzero(rsl == level)
        u = rng.random((3, n))
        got = _pick(query_index[rows], rows, query_index, u[0])
        miss = got < 0
        got[miss] = _pick(category[rows], rows, category[miss], u[1][miss])
        miss = got < 0
        if miss.any() and len(rows):
            got[miss] = rows[np.minimum((u[2][miss] * len(rows)).astype(np.int64), len(rows) - 1)]
        out[:, level - 1] = got
    return out


def synthetic_negatives(
    ctx, parts: dict[str, torch.Tensor], pair_idx: torch.Tensor, generator: torch.Generator, *,
    noise_std: float, p1: float, p2: float,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """(parts of x-, redrawn levels) for the selected rows' ``parts``: every relevance input changed.

    r_target gets noise with per-dimension sd ``noise_std`` x its RMS entry; the lexical features
    become those of a real pair at the redrawn level (``ctx.lower_pairs``); all else is x+'s.
    """
    neg = dict(parts)
    n = int(pair_idx.shape[0])
    levels = redraw_levels(torch.rand(n, generator=generator), p1, p2)
    r = parts["r_target"]
    rms = r.detach().pow(2).mean(1, keepdim=True).sqrt()
    neg["r_target"] = r + torch.randn(r.shape, generator=generator, dtype=r.dtype) * noise_std * rms
    if parts["lex"].shape[1] and ctx.has("lower_pairs"):
        other = ctx.lower_pairs[pair_idx, levels - 1]
        found = other >= 0
        neg["lex"] = torch.where(found[:, None], ctx.lexical[other.clamp(min=0)], parts["lex"])
    return neg, levels


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
    truncation: str = "sample",
) -> tuple[torch.Tensor, dict[str, float]]:
    """The pairwise term plus the RSL CE of the synthetic negatives; stats for the log."""
    from llm2ctr.ctr.rsl import rsl_loss

    sel = (batch["label"] > 0.5) & (batch["rsl"] == 4)
    n = int(sel.sum())
    if n == 0:
        zero = out["logit"].sum() * 0.0
        return zero, {"debias_pairs": 0, "debias_active": 0, "debias_pos_mean": None, "debias_pair_loss": 0.0}
    pos_parts = {k: v[sel] for k, v in out["_parts"].items()}
    neg_parts, levels = synthetic_negatives(model.ctx, pos_parts, batch["pair_idx"][sel], generator,
                                            noise_std=noise_std, p1=p1, p2=p2)
    neg = model.heads(neg_parts)
    f_pos = torch.sigmoid(out["logit"][sel])
    f_neg = torch.sigmoid(neg["logit"])
    pair = margin_loss(f_pos, f_neg, margin, threshold, weight, truncation)
    active = int((truncation_weights(f_pos, threshold, 1.0, truncation) > 0).sum())
    loss = pair + rsl_weight * rsl_loss(neg["rsl_logits"], levels)
    return loss, {"debias_pairs": n, "debias_active": active, "debias_pos_mean": float(f_pos.detach().mean()),
                  "debias_pair_loss": float(pair.detach())}


def active_share_by_epoch(log_lines: list[dict]) -> list[float | None]:
    """Share of the synthetic pairs the truncation kept (w > 0), per epoch, from train_log lines.

    Read from the log rather than counted in the loop so a resumed run reports the same numbers.
    """
    active: dict[int, int] = {}
    pairs: dict[int, int] = {}
    for line in log_lines:
        if "debias_pairs" in line:
            e = int(line["epoch"])
            active[e] = active.get(e, 0) + int(line.get("debias_active", 0))
            pairs[e] = pairs.get(e, 0) + int(line["debias_pairs"])
    return [round(active[e] / pairs[e], 4) if pairs[e] else None for e in sorted(pairs)]
