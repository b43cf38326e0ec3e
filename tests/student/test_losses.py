"""The objective: which rows feed which term."""

from __future__ import annotations

import pytest
import torch

from llm2ctr.student.losses import IGNORE_LABEL, SftDistillLoss
from llm2ctr.student.modeling import Student, student_config


def _setup():
    torch.manual_seed(0)
    m = Student.from_config(student_config(30, d_model=16, num_layers=1, num_heads=2, ffn_dim=32, dropout=0.0),
                            teacher_dim=8)
    b = {
        "input_ids": torch.randint(4, 30, (4, 6)),
        "token_type_ids": torch.zeros(4, 6, dtype=torch.long),
        "attention_mask": torch.ones(4, 6, dtype=torch.long),
        "labels": torch.tensor([0, 3, IGNORE_LABEL, IGNORE_LABEL]),
        "teacher": torch.randn(4, 8),
        "has_teacher": torch.tensor([True, False, True, True]),
    }
    return m, b


def test_terms_use_the_right_rows():
    m, b = _setup()
    loss, parts = SftDistillLoss(m, "sft+mse", mse_weight=0.5)(b)
    out = m(**{k: b[k] for k in ("input_ids", "token_type_ids", "attention_mask")})
    ce = torch.nn.functional.cross_entropy(out.logits[:2], b["labels"][:2])
    mse = ((out.projection[[0, 2, 3]] - b["teacher"][[0, 2, 3]]) ** 2).mean()
    assert parts["ce"] == pytest.approx(float(ce.detach()), rel=1e-5)
    assert parts["mse"] == pytest.approx(float(mse.detach()), rel=1e-5)
    assert float(loss.detach()) == pytest.approx(float((ce + 0.5 * mse).detach()), rel=1e-5)


def test_variants_and_cosine():
    m, b = _setup()
    _, p = SftDistillLoss(m, "sft")(b)
    assert "ce" in p and "mse" not in p
    _, p = SftDistillLoss(m, "mse")(b)
    assert "mse" in p and "ce" not in p
    _, p = SftDistillLoss(m, "mse", distill_loss="cosine")(b)
    assert 0.0 <= p["cosine"] <= 2.0
    with pytest.raises(ValueError, match="variant"):
        SftDistillLoss(m, "kd")
    with pytest.raises(ValueError, match="distill_loss"):
        SftDistillLoss(m, "mse", distill_loss="kl")


def test_batch_without_labels_still_reaches_every_parameter():
    m, b = _setup()
    b["labels"][:] = IGNORE_LABEL
    loss, parts = SftDistillLoss(m, "sft+mse")(b)
    loss.backward()
    assert "ce" not in parts
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)
