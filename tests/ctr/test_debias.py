"""Exposure debias: the margin loss, dynamic truncation, level redraw, and the shared model path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from llm2ctr.ctr.debias import margin_loss, matching_lower_pairs, redraw_levels, truncation_weights


def paper_loss(pos, neg, margin):
    return torch.log1p(torch.exp(torch.clamp(margin - (pos - neg), min=0.0))).mean()


def test_zero_beyond_the_margin_positive_inside_it():
    pos = torch.tensor([0.05, 0.06])
    assert float(margin_loss(pos, pos - 0.2, 0.075, 0.08, 1.0)) == 0.0  # gap 0.2 > margin
    assert float(margin_loss(pos, pos - 0.075, 0.075, 0.08, 1.0)) == 0.0  # exactly at the margin
    inside = margin_loss(pos, pos - 0.01, 0.075, 0.08, 1.0)
    assert float(inside) > 0
    torch.testing.assert_close(inside, torch.log1p(torch.exp(torch.tensor(0.065))) - math.log(2))


def test_batch_rule_zero_when_batch_mean_reaches_threshold_and_scaled_by_weight():
    neg = torch.tensor([0.5, 0.5])
    assert float(margin_loss(torch.tensor([0.08, 0.08]), neg, 0.075, 0.08, 1.0, "batch")) == 0.0
    assert float(margin_loss(torch.tensor([0.10, 0.07]), neg, 0.075, 0.08, 1.0, "batch")) == 0.0
    low = torch.tensor([0.02, 0.04])
    torch.testing.assert_close(margin_loss(low, neg, 0.075, 0.08, 3.0, "batch"),
                               3.0 * margin_loss(low, neg, 0.075, 0.08, 1.0, "batch"))


def test_sample_rule_keeps_the_pairs_whose_own_score_is_below_the_threshold():
    pos, neg = torch.tensor([0.10, 0.07]), torch.tensor([0.5, 0.5])
    # the batch mean 0.085 switches the paper's rule off; per sample the 0.07 pair stays active
    assert float(margin_loss(pos, neg, 0.075, 0.08, 1.0, "batch")) == 0.0
    per_sample = margin_loss(pos, neg, 0.075, 0.08, 1.0, "sample")
    only_low = (torch.nn.functional.softplus(torch.tensor(0.075 - (0.07 - 0.5))) - math.log(2)) / 2
    torch.testing.assert_close(per_sample, only_low)
    w = truncation_weights(torch.tensor([0.0799, 0.08, 0.2]), 0.08, 2.0, "sample")
    assert w.tolist() == [2.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="ctr.debias_truncation"):
        truncation_weights(pos, 0.08, 1.0, "median")


def test_matching_lower_pairs_prefers_the_same_query_then_category():
    query = np.array([0, 0, 0, 0, 1, 1, 2])
    cat = np.array([0, 0, 0, 0, 0, 0, 1])
    rsl = np.array([4, 3, 1, 1, 4, 2, 4])
    low = matching_lower_pairs(query, cat, rsl, seed=0)
    assert low.shape == (7, 3)
    assert low[0, 0] in (2, 3) and low[0, 2] == 1  # same query, levels 1 and 3
    assert low[0, 1] == 5  # no level 2 in query 0: the same category's level-2 pair
    assert low[6, 0] in (2, 3) and low[6, 1] == 5  # category 1 has none: any query's pair of that level
    assert (rsl[low[low >= 0]] == np.broadcast_to([1, 2, 3], low.shape)[low >= 0]).all()


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


def test_synthetic_negatives_change_every_relevance_input_and_only_those(ctr_config):
    from llm2ctr.ctr import jobs
    from llm2ctr.ctr.baselines import build_model, get_spec
    from llm2ctr.ctr.debias import debias_loss, synthetic_negatives
    from llm2ctr.ctr.prepare import prepare

    cfg = ctr_config()
    prepared = prepare(cfg)
    ctx = jobs.TextContexts(cfg, prepared).get("distilled")
    torch.manual_seed(0)
    model = build_model(get_spec("v2_frozen"), ctx, prepared.spec, cfg.ctr)
    batch = next(prepared.reader("train").batches(512))
    out = model(batch)
    sel = (batch["label"] > 0.5) & (batch["rsl"] == 4)
    assert int(sel.sum()) > 5
    pos = {k: v[sel] for k, v in out["_parts"].items()}
    g = torch.Generator().manual_seed(0)
    neg, levels = synthetic_negatives(ctx, pos, batch["pair_idx"][sel], g, noise_std=1.0, p1=0.2, p2=0.6)
    assert set(levels.tolist()) <= {1, 2, 3}
    # r_target: noise on the embedding's own scale (per-dimension sd = its RMS entry)
    noise = neg["r_target"] - pos["r_target"]
    ratio = noise.pow(2).mean(1).sqrt() / pos["r_target"].pow(2).mean(1).sqrt()
    assert float(ratio.min()) > 0.5 and float(ratio.max()) < 1.6, ratio
    # lexical: a real pair at the redrawn level, of the same query when there is one
    other = ctx.lower_pairs[batch["pair_idx"][sel], levels - 1]
    assert bool((other >= 0).all())
    assert torch.equal(neg["lex"], ctx.lexical[other])
    assert not torch.equal(neg["lex"], pos["lex"])
    assert (prepared.pairs.rsl[other.numpy()] == levels.numpy()).all()
    same_query = prepared.pairs.query_index[other.numpy()] == prepared.pairs.query_index[batch["pair_idx"][sel].numpy()]
    assert same_query.mean() > 0.9
    # everything else is x+'s
    for k in ("wide", "r_user", "r_cate"):
        assert torch.equal(neg[k], pos[k]), k
    # the loss is active exactly when some f(x+) is below the threshold (per sample)
    stats = {}
    for thr in (0.0, 1.0):
        loss, st = debias_loss(model, out, batch, torch.Generator().manual_seed(1), margin=0.075, threshold=thr,
                               weight=1.0, noise_std=1.0, p1=0.2, p2=0.6, rsl_weight=0.0)
        stats[thr] = (float(loss.detach()), st)
    assert stats[0.0][0] == 0.0 and stats[0.0][1]["debias_active"] == 0
    assert stats[1.0][0] > 0.0 and stats[1.0][1]["debias_active"] == int(sel.sum())
