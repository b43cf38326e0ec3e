"""The objective: which rows feed which term, and what each term computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llm2ctr.student.losses import IGNORE_LABEL, VARIANTS, DistillLoss, soft_label_kl, variant_terms
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
        "soft": torch.softmax(torch.randn(4, 4), -1),
    }
    return m, b


def _forward(m, b):
    return m(**{k: b[k] for k in ("input_ids", "token_type_ids", "attention_mask")})


def test_terms_use_the_right_rows():
    m, b = _setup()
    w = torch.tensor([1.0, 2.0, 0.5, 3.0])
    scale = torch.rand(8) + 0.5
    loss, parts = DistillLoss(m, "sft+kd+mse", mse_weight=0.5, distill_loss="scaled_mse", kd_weight=0.3,
                              temperature=2.0, class_weights=w, teacher_scale=scale)(b)
    out = _forward(m, b)
    ce = torch.nn.functional.cross_entropy(out.logits[:2], b["labels"][:2], weight=w)
    rows = [0, 2, 3]
    mse = (((out.projection[rows] - b["teacher"][rows]) / scale) ** 2).mean()
    p_t = b["soft"][rows]
    log_q = torch.log_softmax(out.logits[rows] / 2.0, -1)
    kd = (4.0 * (p_t * (p_t.log() - log_q)).sum(-1)).mean()
    assert parts["ce"] == pytest.approx(float(ce), rel=1e-5)
    assert parts["scaled_mse"] == pytest.approx(float(mse), rel=1e-5)
    assert parts["kd"] == pytest.approx(float(kd), rel=1e-5)
    assert float(loss) == pytest.approx(float(ce + 0.5 * mse + 0.3 * kd), rel=1e-5)


def test_kl_is_zero_exactly_at_the_teacher_and_positive_elsewhere():
    logits = torch.tensor([[2.0, 0.0, -1.0, 0.5]])
    teacher = torch.softmax(logits / 3.0, -1)
    assert float(soft_label_kl(logits, teacher, 3.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(soft_label_kl(logits + torch.tensor([[0.0, 1.0, 0.0, 0.0]]), teacher, 3.0)) > 1e-3


def test_variants_and_distances():
    assert set(VARIANTS) >= {"sft", "kd", "mse", "sft+kd", "sft+mse", "sft+kd+mse"}
    assert variant_terms("sft+kd+mse") == {"sft", "kd", "mse"}
    m, b = _setup()
    _, p = DistillLoss(m, "sft")(b)
    assert set(p) == {"ce", "loss"}
    _, p = DistillLoss(m, "kd")(b)
    assert set(p) == {"kd", "loss"}
    _, p = DistillLoss(m, "mse", distill_loss="cosine")(b)
    assert set(p) == {"cosine", "loss"} and 0.0 <= p["cosine"] <= 2.0
    with pytest.raises(ValueError, match="variant"):
        DistillLoss(m, "mse+sft")
    with pytest.raises(ValueError, match="distill_loss"):
        DistillLoss(m, "mse", distill_loss="kl")
    with pytest.raises(ValueError, match="scale"):
        DistillLoss(m, "mse", distill_loss="scaled_mse")(b)


def test_batch_without_labels_still_reaches_every_parameter():
    m, b = _setup()
    b["labels"][:] = IGNORE_LABEL
    loss, parts = DistillLoss(m, "sft+mse", distill_loss="mse")(b)
    loss.backward()
    assert "ce" not in parts
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)


def test_kd_student_reproduces_teacher_probabilities_on_a_toy_set():
    """Soft-label distillation alone: on 64 fixed inputs the student's head ends up with the
    teacher head's probabilities (not just its argmax)."""
    torch.manual_seed(0)
    m = Student.from_config(student_config(40, d_model=32, num_layers=1, num_heads=2, ffn_dim=64, dropout=0.0),
                            teacher_dim=4)
    n = 64
    ids = torch.randint(4, 40, (n, 5))
    teacher = torch.softmax(torch.randn(n, 4) * 2.0, -1)
    b = {"input_ids": ids, "token_type_ids": torch.zeros_like(ids), "attention_mask": torch.ones_like(ids),
         "labels": torch.full((n,), IGNORE_LABEL), "teacher": torch.zeros(n, 4),
         "has_teacher": torch.ones(n, dtype=torch.bool), "soft": teacher}
    loss_fn = DistillLoss(m, "kd", temperature=1.0)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    first = float(loss_fn(b)[0])
    for _ in range(400):
        opt.zero_grad()
        loss_fn(b)[0].backward()
        opt.step()
    m.eval()
    with torch.no_grad():
        got = torch.softmax(_forward(m, b).logits, -1).numpy()
    assert float(loss_fn(b)[0]) < 0.05 * first
    assert np.abs(got - teacher.numpy()).max() < 0.1
    assert (got.argmax(1) == teacher.numpy().argmax(1)).mean() > 0.95
