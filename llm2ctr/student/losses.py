"""The distillation objective, written like a sentence-transformers loss (a module that owns the model).

loss = CE(relevance logits, rsl-1) over labelled rows
       + mse_weight * D(projection(pooled), teacher vector) over rows that have a teacher vector,
with D = MSE or (1 - cosine). Unlabelled rows (label -100) feed only the distillation term; rows
without a teacher vector only the CE term. Each term is a mean over the rows it applies to, so
mixing many unlabelled distillation pairs into a batch does not dilute the CE term.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from llm2ctr.student.modeling import Student

IGNORE_LABEL = -100
VARIANTS = ("sft+mse", "sft", "mse")


def distill_distance(pred: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-row distance: mean squared error over dims, or 1 - cosine similarity."""
    if kind == "mse":
        return (pred - target).pow(2).mean(-1)
    if kind == "cosine":
        return 1.0 - F.cosine_similarity(pred, target, dim=-1)
    raise ValueError(f"distill_loss={kind!r}: expected 'mse' or 'cosine'")


class SftDistillLoss(nn.Module):
    """CE on labelled rows + weight * distillation on rows with a teacher vector."""

    def __init__(
        self,
        model: Student,
        variant: str = "sft+mse",
        mse_weight: float = 1.0,
        distill_loss: str = "mse",
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant={variant!r}: expected one of {VARIANTS}")
        distill_distance(torch.zeros(1, 1), torch.zeros(1, 1), distill_loss)  # validate the name
        self.model = model
        self.use_ce = variant in ("sft+mse", "sft")
        self.use_distill = variant in ("sft+mse", "mse")
        self.mse_weight = mse_weight if variant == "sft+mse" else 1.0
        self.distill_loss = distill_loss

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Return the scalar loss and the detached parts (for logs)."""
        out = self.model(
            input_ids=batch["input_ids"],
            token_type_ids=batch["token_type_ids"],
            attention_mask=batch["attention_mask"],
        )
        # zero-weighted terms keep every head in the graph (DDP needs all params to get grads)
        loss = out.logits.sum() * 0.0 + out.projection.sum() * 0.0
        parts: dict[str, float] = {}
        labels = batch["labels"]
        labelled = labels != IGNORE_LABEL
        if self.use_ce and bool(labelled.any()):
            ce = F.cross_entropy(out.logits[labelled].float(), labels[labelled])
            loss = loss + ce
            parts["ce"] = float(ce.detach())
        has_t = batch["has_teacher"]
        if self.use_distill and bool(has_t.any()):
            dist = distill_distance(out.projection[has_t].float(), batch["teacher"][has_t], self.distill_loss)
            d = dist.mean()
            loss = loss + self.mse_weight * d
            parts[self.distill_loss] = float(d.detach())
        parts["loss"] = float(loss.detach())
        return loss, parts
