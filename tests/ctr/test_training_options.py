"""Negative downsampling re-weighting, online hard negative mining, optimizer param groups."""

from __future__ import annotations

import torch
from torch import nn

from llm2ctr.ctr_finetune.trainer import _subsample, click_loss, make_optimizer


def test_downsampling_reweights_negatives_so_the_expected_loss_is_unbiased():
    g = torch.Generator().manual_seed(0)
    n = 200_000
    y = (torch.rand(n, generator=g) < 0.1).float()
    logit = torch.randn(n, generator=g)
    full = torch.nn.functional.binary_cross_entropy_with_logits(logit, y, reduction="sum") / n
    b = _subsample({"label": y, "logit": logit}, 0.25, torch.Generator().manual_seed(1))
    assert 0.3 * n < len(b["label"]) < 0.4 * n  # all positives + ~25% of negatives
    assert bool((b["weight"][b["label"] > 0.5] == 1).all()) and bool((b["weight"][b["label"] < 0.5] == 4).all())
    est = torch.nn.functional.binary_cross_entropy_with_logits(b["logit"], b["label"], weight=b["weight"], reduction="sum") / n
    assert abs(float(est) - float(full)) / float(full) < 0.02


def test_hard_negative_mining_keeps_the_hardest_negatives_and_all_positives():
    y = torch.tensor([1.0, 0, 0, 0, 0])
    logit = torch.tensor([0.0, 5.0, -5.0, 3.0, -3.0])  # hardest negatives: 5.0 and 3.0
    w = torch.ones(5)
    got = click_loss(logit, y, w, hard_neg_ratio=0.5)
    per = torch.nn.functional.binary_cross_entropy_with_logits(logit, y, reduction="none")
    torch.testing.assert_close(got, (per[0] + per[1] + per[3]) / 3)
    torch.testing.assert_close(click_loss(logit, y, w, 0.0), per.mean())


def test_encoder_gets_the_scaled_learning_rate():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Linear(2, 2)
            self.head = nn.Linear(2, 1)

    opt = make_optimizer(M(), 1e-3, 0.1)
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs == {"ranker": 1e-3, "encoder": 1e-4}
    assert sum(len(g["params"]) for g in opt.param_groups) == 4
