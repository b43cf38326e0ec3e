"""PRECTR-V2 building blocks: shapes, the factored probability, the final score, attention, MoE."""

from __future__ import annotations

import torch

from llm2ctr.ctr.attention import TargetAttention
from llm2ctr.ctr.moe import MoEIncentive
from llm2ctr.ctr.prectr import final_logit
from llm2ctr.ctr.rsl import factored_probability, rsl_loss


def test_factored_probability_is_a_probability_and_the_weighted_sum():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(256, 4, generator=g) * 8
    rsl = torch.randn(256, 4, generator=g) * 8
    p = factored_probability(base, rsl)
    assert p.shape == (256,)
    assert bool(((p >= 0) & (p <= 1)).all())
    manual = sum(torch.sigmoid(base[:, i]) * torch.softmax(rsl, -1)[:, i] for i in range(4))
    torch.testing.assert_close(p, manual)
    # the level distribution sums to one, so equal conditionals give that conditional back
    same = torch.full((256, 4), 0.3).logit()
    torch.testing.assert_close(factored_probability(same, rsl), torch.full((256,), 0.3))


def test_final_score_stays_in_unit_interval_equals_p_at_zero_tau_and_is_monotone():
    p = torch.tensor([1e-9, 0.01, 0.3, 0.7, 0.99, 1.0])
    for tau in (-50.0, -1.0, 0.0, 1.0, 50.0):
        s = torch.sigmoid(final_logit(p, torch.full_like(p, tau)))
        assert bool(((s >= 0) & (s <= 1)).all()) and bool(torch.isfinite(s).all())
    torch.testing.assert_close(torch.sigmoid(final_logit(p[1:5], torch.zeros(4))), p[1:5])
    low = torch.sigmoid(final_logit(p[1:5], torch.full((4,), -0.5)))
    high = torch.sigmoid(final_logit(p[1:5], torch.full((4,), 0.5)))
    assert bool((low < p[1:5]).all()) and bool((high > p[1:5]).all())
    assert bool((torch.diff(high) > 0).all())  # monotone in P too
    # strictly inside (0, 1) for moderate tau, unlike the article's tau * p (negative for tau < 0)
    s = torch.sigmoid(final_logit(torch.tensor([0.2]), torch.tensor([-3.0])))
    assert 0 < float(s) < 0.2


def test_target_attention_masks_padding_and_zeroes_empty_sequences():
    torch.manual_seed(0)
    att = TargetAttention(8, 8, 10, 16, 2)
    q, k, v = torch.randn(3, 8), torch.randn(3, 5, 8), torch.randn(3, 5, 10)
    mask = torch.tensor([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    out, w = att(q, k, v, mask)
    assert out.shape == (3, 16) and w.shape == (3, 5)
    assert torch.count_nonzero(out[1]) == 0  # no behaviours -> zero vector
    torch.testing.assert_close(w.sum(1), torch.tensor([1.0, 0.0, 1.0]))
    assert float(w[0, 2:].detach().abs().sum()) == 0.0
    # changing padded values does not change the output
    v2 = v.clone()
    v2[0, 2:] = 100.0
    torch.testing.assert_close(att(q, k, v2, mask)[0], out)


def test_moe_gate_is_a_distribution_and_tau_in_expected_range():
    torch.manual_seed(0)
    moe = MoEIncentive(4, 6, 8)
    tau, w = moe(torch.randn(32, 4), torch.randn(32, 6))
    assert tau.shape == (32,) and w.shape == (32, 2)
    torch.testing.assert_close(w.sum(1), torch.ones(32))
    assert bool(torch.isfinite(tau).all())


def test_rsl_loss_uses_known_levels_only():
    logits = torch.zeros(4, 4, requires_grad=True)
    loss = rsl_loss(logits, torch.tensor([0, 4, 1, 0]))
    torch.testing.assert_close(loss, torch.log(torch.tensor(4.0)))
    assert float(rsl_loss(logits.detach(), torch.zeros(4, dtype=torch.long))) == 0.0
