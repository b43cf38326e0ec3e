"""The student's objective, written like a sentence-transformers loss (a module that owns the model).

A variant names the terms it uses, joined by ``+`` (``sft``, ``kd``, ``mse`` in any non-empty
combination, e.g. ``sft+kd+mse``):

- ``sft``: cross-entropy of the relevance logits against rsl-1, class-weighted, on labelled rows;
- ``kd``:  T² · KL(teacher head probabilities at temperature T ‖ student probabilities at T) on
  every row with a teacher vector, labelled or not (soft labels carry what the teacher knows
  about relevance, not only where its vectors point);
- ``mse``: distance of the teacher-space projection to the teacher vector on rows with one,
  with D = MSE (the paper's), 1 - cosine, ``scaled_mse`` (MSE per dimension divided by that
  dimension's variance over the training targets) or ``centered_cosine`` (1 - cosine after
  subtracting the mean teacher vector). The last two ignore the part every teacher vector
  shares: with RAG prompts that is most of the norm (mean vector 0.87 of unit-norm vectors on
  the quickstart), which is why plain MSE needs a weight of ~100 and plain cosine starts at 0.87.

Each term is a mean over the rows it applies to, so many unlabelled rows in a batch do not dilute
the cross-entropy.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from llm2ctr.student.modeling import Student, StudentOutput

IGNORE_LABEL = -100
TERMS = ("sft", "kd", "mse")
VARIANTS = tuple(
    "+".join(c) for n in range(1, len(TERMS) + 1) for c in itertools.combinations(TERMS, n)
)
DISTANCES = ("mse", "cosine", "scaled_mse", "centered_cosine")


def variant_terms(variant: str) -> frozenset[str]:
    """The set of terms of a variant name; an unknown or out-of-order name is an error."""
    if variant not in VARIANTS:
        raise ValueError(f"variant={variant!r}: expected one of {', '.join(VARIANTS)}")
    return frozenset(variant.split("+"))


def distill_distance(
    pred: torch.Tensor,
    target: torch.Tensor,
    kind: str,
    scale: torch.Tensor | None = None,
    center: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-row distance: MSE over dims, 1 - cosine, MSE in units of ``scale`` (per-dim sd), or
    1 - cosine after subtracting ``center`` (the teacher's mean vector) from both."""
    if kind == "mse":
        return (pred - target).pow(2).mean(-1)
    if kind == "cosine":
        return 1.0 - F.cosine_similarity(pred, target, dim=-1)
    if kind == "scaled_mse":
        if scale is None:
            raise ValueError("distill_loss='scaled_mse' needs the per-dimension scale of the teacher vectors")
        return ((pred - target) / scale).pow(2).mean(-1)
    if kind == "centered_cosine":
        if center is None:
            raise ValueError("distill_loss='centered_cosine' needs the mean teacher vector")
        return 1.0 - F.cosine_similarity(pred - center, target - center, dim=-1)
    raise ValueError(f"distill_loss={kind!r}: expected one of {', '.join(DISTANCES)}")


def soft_label_kl(student_logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² · KL(teacher ‖ softmax(student/T)) per row (Hinton et al.; T² keeps gradients T-independent)."""
    log_p = F.log_softmax(student_logits / temperature, dim=-1)
    kl = (teacher_probs * (torch.log(teacher_probs.clamp_min(1e-12)) - log_p)).sum(-1)
    return kl * temperature**2


class DistillLoss(nn.Module):
    """The variant's terms on the rows each applies to, weighted and summed."""

    def __init__(
        self,
        model: Student,
        variant: str = "sft+mse",
        mse_weight: float = 100.0,
        distill_loss: str = "mse",
        kd_weight: float = 1.0,
        temperature: float = 2.0,
        class_weights: torch.Tensor | None = None,
        teacher_scale: torch.Tensor | None = None,
        teacher_center: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        terms = variant_terms(variant)
        if distill_loss not in DISTANCES:
            raise ValueError(f"distill_loss={distill_loss!r}: expected one of {', '.join(DISTANCES)}")
        if temperature <= 0:
            raise ValueError(f"kd temperature={temperature}: expected > 0")
        self.model = model
        self.use_ce, self.use_kd, self.use_distill = ("sft" in terms), ("kd" in terms), ("mse" in terms)
        # a lone term needs no weight: its scale only sets the effective learning rate
        alone = len(terms) == 1
        self.mse_weight = 1.0 if alone else mse_weight
        self.kd_weight = 1.0 if alone else kd_weight
        self.distill_loss = distill_loss
        self.temperature = temperature
        self.register_buffer("class_weights", class_weights.float() if class_weights is not None else None)
        self.register_buffer("teacher_scale", teacher_scale.float() if teacher_scale is not None else None)
        self.register_buffer("teacher_center", teacher_center.float() if teacher_center is not None else None)
        if self.use_distill:
            distill_distance(torch.zeros(1, 1), torch.zeros(1, 1), distill_loss, torch.ones(1), torch.ones(1))

    @property
    def has_head_objective(self) -> bool:
        """Whether the relevance head is trained (then early stopping watches its macro-F1)."""
        return self.use_ce or self.use_kd

    def forward(
        self, batch: dict[str, torch.Tensor], out: StudentOutput | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Return the scalar loss and the detached parts (for logs); ``out``: the model's outputs on
        ``batch`` when the caller already has them (evaluation reads the logits too)."""
        if out is None:
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
            ce = F.cross_entropy(out.logits[labelled].float(), labels[labelled], weight=self.class_weights)
            loss = loss + ce
            parts["ce"] = float(ce.detach())
        has_t = batch["has_teacher"]
        if self.use_kd and bool(has_t.any()):
            kd = soft_label_kl(out.logits[has_t].float(), batch["soft"][has_t], self.temperature).mean()
            loss = loss + self.kd_weight * kd
            parts["kd"] = float(kd.detach())
        if self.use_distill and bool(has_t.any()):
            dist = distill_distance(
                out.projection[has_t].float(), batch["teacher"][has_t], self.distill_loss, self.teacher_scale,
                self.teacher_center,
            )
            d = dist.mean()
            loss = loss + self.mse_weight * d
            parts[self.distill_loss] = float(d.detach())
        parts["loss"] = float(loss.detach())
        return loss, parts
