"""Exposure debias: the margin loss, dynamic truncation, level redraw, and the shared model path."""

from __future__ import annotations

import math

import torch

from llm2ctr.ctr_finetune.debias import margin_loss, redraw_levels


def paper_loss(pos, neg, margin):
    return torch.log1p(torch.exp(torch.clamp(margin - (pos - neg), min=0.0))).mean()


def test_zero_beyond_the_margin_positive_inside_it():
    pos = torch.tensor([0.05, 0.06])
    assert float(margin_loss(pos, pos - 0.2, 0.075, 0.08, 1.0)) == 0.0  # gap 0.2 > margin
    assert float(margin_loss(pos, pos - 0.075, 0.075, 0.08, 1.0)) == 0.0  # exactly at the margin
    inside = margin_loss(pos, pos - 0.01, 0.075, 0.08, 1.0)
    assert float(inside) > 0
    torch.testing.assert_close(inside, torch.log1p(torch.exp(torch.tensor(0.065))) - math.log(2))


def test_zero_when_batch_mean_reaches_threshold_and_scaled_by_weight():
    neg = torch.tensor([0.5, 0.5])
    assert float(margin_loss(torch.tensor([0.08, 0.08]), neg, 0.075, 0.08, 1.0)) == 0.0
    assert float(margin_loss(torch.tensor([0.10, 0.07]), neg, 0.075, 0.08, 1.0)) == 0.0
    low = torch.tensor([0.02, 0.04])
    torch.testing.assert_close(margin_loss(low, neg, 0.075, 0.08, 3.0), 3.0 * margin_loss(low, neg, 0.075, 0.08, 1.0))


def test_gradients_equal_the_papers_literal_formula():
    pos = torch.tensor([0.01, 0.03, 0.05], requires_grad=True)
    neg = torch.tensor([0.02, -0.5, 0.04], requires_grad=True)
    margin_loss(pos, neg, 0.075, 0.08, 1.0).backward()
    ours = (pos.grad.clone(), neg.grad.clone())
    pos.grad, neg.grad = None, None
    paper_loss(pos, neg, 0.075).backward()
    torch.testing.assert_close(ours[0], pos.grad)
    torch.testing.assert_close(ours[1], neg.grad)


def test_redrawn_levels_follow_p1_p2():
    u = torch.rand(200_000, generator=torch.Generator().manual_seed(0))
    lv = redraw_levels(u, 0.2, 0.6)
    share = torch.bincount(lv, minlength=4)[1:].float() / len(lv)
    torch.testing.assert_close(share, torch.tensor([0.2, 0.4, 0.4]), atol=0.01, rtol=0)
