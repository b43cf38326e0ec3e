"""HCCP-style exposure debias: Margin InfoNCE of each click against its hybrid negatives.

The alternative to PRECTR-V2's synthetic negatives (debias.py): real ones. A clicked row x+ is
contrasted with its request's unexposed candidates and lower-relevance exposed items
(hybrid_samples.py), scored by the same model with the item swapped. With logits s (divided by
the temperature t) and a margin m added to every negative::

    L = -log( exp(s+/t) / (exp(s+/t) + sum_j exp((s_j + m)/t)) )

The margin makes the loss keep pushing until the click leads each negative by m in log-odds, not
merely ranks first (the "Margin" of Margin InfoNCE). Rows without negatives contribute nothing.
"""

from __future__ import annotations

import torch

from llm2ctr.errors import ArtifactError


def margin_infonce(pos: torch.Tensor, neg: torch.Tensor, mask: torch.Tensor, margin: float,
                   temperature: float = 1.0) -> torch.Tensor:
    """Mean over rows with at least one negative; ``pos`` [B], ``neg`` and ``mask`` [B, K]."""
    has = mask.any(dim=1)
    if not bool(has.any()):
        return pos.sum() * 0.0
    neg = torch.where(mask, (neg + margin) / temperature, torch.full_like(neg, float("-inf")))
    logits = torch.cat([(pos / temperature)[:, None], neg], dim=1)[has]
    return (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()


def hccp_loss(model, out: dict, batch: dict[str, torch.Tensor], *, margin: float, temperature: float,
              weight: float) -> tuple[torch.Tensor, dict[str, float]]:
    """``weight`` x Margin InfoNCE of the batch's clicks against their hybrid negatives; log stats."""
    cand = batch.get("hyb_pidx")
    if cand is None:
        raise ArtifactError("ctr.debias=hccp needs the hybrid samples column hyb_pidx in the training features; "
                         "re-run `llm2ctr ctr train` so the features are rebuilt")
    sel = (batch["label"] > 0.5) & (cand[:, 0] >= 0)
    n = int(sel.sum())
    if n == 0:
        return out["logit"].sum() * 0.0, {"hccp_clicks": 0, "hccp_negatives": 0, "hccp_loss": 0.0}
    cand = cand[sel]
    mask = cand >= 0
    parts = {k: v[sel] for k, v in out["_parts"].items()}
    rows = {k: batch[k][sel] for k in ("sparse", "numeric")}
    neg_logit = model.heads(model.candidate_parts(parts, rows, cand.clamp(min=0)))["logit"].reshape(cand.shape)
    loss = margin_infonce(out["logit"][sel], neg_logit, mask, margin, temperature)
    return weight * loss, {"hccp_clicks": n, "hccp_negatives": int(mask.sum()), "hccp_loss": float(loss.detach())}
