"""QIN, HCCP's Margin InfoNCE and hybrid samples, and the long-history tower: losses against hand-computed
values, masks (a padded or foreign behaviour never changes the output), shapes. That every model
beats chance on a simulated log is tests/ctr/test_every_model.py (it trains the whole registry)."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
import torch

from llm2ctr.ctr.features import build_pair_features
from llm2ctr.ctr.hccp import margin_infonce
from llm2ctr.ctr.hybrid_samples import hybrid_negatives
from llm2ctr.ctr.inputs import PairContext
from llm2ctr.ctr.long_history import last_behaviours
from llm2ctr.ctr.qformer import LongHistoryTower
from llm2ctr.ctr.qin import SparseTargetAttention, top_k_mask
from llm2ctr.data.history import prior_behaviours


def test_margin_infonce_matches_a_hand_computed_case():
    pos = torch.tensor([2.0, 1.0, 0.5])
    neg = torch.tensor([[1.0, 0.0, 9.0], [3.0, 9.0, 9.0], [0.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False], [True, False, False], [False, False, False]])
    got = margin_infonce(pos, neg, mask, margin=0.5, temperature=2.0)
    # row 0: logits 2/2, (1+.5)/2, (0+.5)/2; row 1: 1/2, (3+.5)/2; row 2 has no negatives (left out)
    row0 = -math.log(math.exp(1.0) / (math.exp(1.0) + math.exp(0.75) + math.exp(0.25)))
    row1 = -math.log(math.exp(0.5) / (math.exp(0.5) + math.exp(1.75)))
    assert got.item() == pytest.approx((row0 + row1) / 2, abs=1e-6)
    assert margin_infonce(pos, neg, torch.zeros_like(mask), 0.5).item() == 0.0


def test_margin_infonce_margin_keeps_pushing_a_click_already_ranked_first():
    pos, neg, mask = torch.tensor([1.0], requires_grad=True), torch.tensor([[0.9]]), torch.tensor([[True]])
    plain = margin_infonce(pos, neg, mask, margin=0.0)
    with_margin = margin_infonce(pos, neg, mask, margin=1.0)
    assert with_margin.item() > plain.item()
    with_margin.backward()
    assert pos.grad.item() < 0  # the click's logit is pushed up


def test_top_k_mask_keeps_only_the_best_valid_positions():
    scores = torch.tensor([[5.0, 1.0, 4.0, 9.0, 3.0]])
    mask = torch.tensor([[True, True, True, False, True]])  # the best score sits on padding
    keep = top_k_mask(scores, mask, 2)
    assert keep.tolist() == [[True, False, True, False, False]]
    assert top_k_mask(scores, mask, 9).tolist() == mask.tolist()


def test_sparse_target_attention_never_reads_padding_or_dropped_behaviours():
    torch.manual_seed(0)
    att = SparseTargetAttention(4, 4, 4, 8, top_k=2)
    q, k, v = torch.randn(3, 4), torch.randn(3, 6, 4), torch.randn(3, 6, 4)
    mask = torch.tensor([[True] * 6, [True, True, True, False, False, False], [False] * 6])
    out, w = att(q, k, v, mask)
    assert out.shape == (3, 8) and w.shape == (3, 6)
    assert (w[~mask] == 0).all()
    assert ((w > 0).sum(1) == torch.tensor([2, 2, 0])).all()
    assert torch.allclose(w.sum(1)[:2], torch.ones(2))
    assert (out[2] == 0).all()  # no behaviours: a zero interest, not a softmax over padding
    v2 = v.clone()
    v2[~mask] = 100.0  # what sits on padding changes nothing
    dropped = (w == 0) & mask
    v2[dropped] = -50.0  # nor do the behaviours outside the top k
    out2, _ = att(q, k, v2, mask)
    assert torch.allclose(out, out2)


def _tower_context(n_pairs: int = 12, d: int = 6) -> PairContext:
    g = torch.Generator().manual_seed(0)
    log_pairs = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])  # user A: rows 0..5, user B: rows 6..9
    return PairContext({
        "pair_emb": torch.randn(n_pairs, d, generator=g), "query_emb": torch.randn(3, d, generator=g),
        "pair_query": torch.arange(n_pairs) % 3, "lexical": torch.zeros(n_pairs, 1),
        "beh_pidx": log_pairs, "beh_clicks": torch.tensor([1, 0, 0, 1, 0, 0, 1, 1, 0, 0]),
        "beh_rsl": torch.tensor([4, 2, 1, 4, 3, 0, 4, 4, 1, 2]),
    })


def test_last_behaviours_are_right_aligned_with_padding_on_the_left():
    pos, mask = last_behaviours(torch.tensor([0, 6, 3]), torch.tensor([4, 8, 3]), 3)
    assert pos.tolist() == [[1, 2, 3], [5, 6, 7], [0, 1, 2]]
    assert mask.tolist() == [[True, True, True], [False, True, True], [False, False, False]]


def test_long_history_tower_reads_only_the_users_range_before_the_request():
    torch.manual_seed(0)
    ctx = _tower_context()
    tower = LongHistoryTower(text_dim=6, dim=8, length=5, n_queries=3, heads=2)
    start, end = torch.tensor([0, 6, 6, 0]), torch.tensor([4, 9, 6, 4])  # row 2: empty; row 3 = row 0
    query = ctx.query_emb[torch.tensor([0, 1, 2, 0])]
    r, w, outcome = tower(ctx, start, end, query)
    assert r.shape == (4, 8) and w.shape == (4, 5) and outcome.shape == (4, 5)
    assert (w[0, :1] == 0).all() and (w[1, :2] == 0).all()  # left padding (4 and 3 behaviours of 5)
    assert torch.allclose(w.sum(1), torch.tensor([1.0, 1.0, 0.0, 1.0]), atol=1e-5)
    assert (r[2] == 0).all()
    assert torch.allclose(r[0], r[3])
    # behaviours outside a row's range (the other user's, or after the request) change nothing
    ctx.beh_pidx[4:] = torch.tensor([11, 11, 11, 11, 11, 11])
    ctx.beh_clicks[4:] = 1
    r2, _, _ = tower(ctx, start[:1], end[:1], query[:1])
    assert torch.allclose(r[0], r2[0], atol=1e-6)


def test_prior_behaviours_are_strictly_before_the_request():
    user = np.array([0, 0, 0, 1, 0])
    ts = np.array([10, 20, 20, 5, 30])
    rows, start, end = prior_behaviours(user, ts, np.ones(5, bool), np.array([0, 0, 1]), np.array([20, 31, 5]))
    assert [list(rows[s:e]) for s, e in zip(start, end, strict=True)] == [[0], [0, 1, 2, 4], []]


def test_hybrid_negatives_mix_unexposed_and_lower_relevance_items_of_the_same_request():
    pairs = pa.table({"pair_id": [f"p{i}" for i in range(8)], "query": ["q"] * 8,
                      "item_text": [f"item {i}" for i in range(8)], "item_id": [f"i{i}" for i in range(8)],
                      "rsl": [4, 2, 4, 3, 1, 2, 4, 1], "category": ["c"] * 8})
    pf = build_pair_features(pairs, 101)
    events = pa.table({"request_id": ["r1"] * 4 + ["r2"] * 2, "pair_id": ["p0", "p1", "p2", "p3", "p6", "p7"],
                       "click": [1, 0, 0, 0, 0, 1], "rsl": [3, 2, 4, 3, 4, 1]})
    unexposed = pa.table({"request_id": ["r1", "r1", "r2"], "pair_id": ["p4", "p5", "p5"]})
    neg = hybrid_negatives(events, unexposed, pf, 8, seed=0)
    assert neg.shape == (6, 8)
    got = sorted(int(x) for x in neg[0] if x >= 0)
    assert got == [1, 4, 5]  # p1 (rsl 2 < 3) and the two unexposed; not p2 (rsl 4) nor p3 (rsl 3, equal)
    assert (neg[[1, 2, 3, 4]] == -1).all()  # not clicks
    assert sorted(int(x) for x in neg[5] if x >= 0) == [5]  # rsl-1 click: only the unexposed candidate
    assert sorted(int(x) for x in hybrid_negatives(events, unexposed, pf, 2, seed=0)[0] if x >= 0) != []
    assert (hybrid_negatives(events, unexposed, pf, 2, seed=0)[0] >= 0).sum() == 2  # capped at n
