"""CTR metrics equal scikit-learn / a per-user reference, on random data with ties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

from llm2ctr.ctr.metrics import (
    auc,
    average_precision,
    evaluate,
    evaluate_segments,
    gauc,
    logloss,
    pcoc,
    pcoc_deviation,
    weighted_logloss,
)


def _data(seed: int, n: int, decimals: int | None, ctr: float = 0.3):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < ctr).astype(np.int8)
    p = rng.random(n) * 0.5 + 0.4 * y  # informative scores
    if decimals is not None:
        p = np.round(p, decimals)  # many ties
    return y, np.clip(p, 0.001, 0.999)


@pytest.mark.parametrize(
    ("seed", "n", "decimals"), [(0, 7, None), (1, 200, 1), (2, 5000, 2), (3, 5000, None), (4, 3000, 0)]
)
def test_ranking_and_loss_metrics_equal_sklearn(seed, n, decimals):
    y, p = _data(seed, n, decimals)
    assert auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert average_precision(y, p) == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert logloss(y, p) == pytest.approx(log_loss(y, p), abs=1e-12)


def test_auc_all_tied_scores_is_half_and_scores_may_be_logits():
    y = np.array([0, 1, 0, 1, 1])
    assert auc(y, np.full(5, 0.3)) == 0.5
    y, p = _data(5, 1000, 2)
    z = np.log(p) - np.log1p(-p)  # a monotone transform (the logit): scores outside [0, 1]
    assert auc(y, z) == pytest.approx(auc(y, p), abs=1e-15)
    assert auc(y, 1 - p) == pytest.approx(1 - auc(y, p), abs=1e-12)


def _gauc_reference(y, p, users):
    num = den = 0.0
    skipped_users = skipped_imps = 0
    for u in np.unique(users):
        m = users == u
        if y[m].min() == y[m].max():
            skipped_users += 1
            skipped_imps += int(m.sum())
            continue
        num += m.sum() * roc_auc_score(y[m], p[m])
        den += m.sum()
    return num / den, skipped_users, skipped_imps


@pytest.mark.parametrize(
    ("seed", "decimals", "dtype"), [(0, 1, np.float64), (1, 2, np.float32), (2, None, np.float64), (3, 3, np.float32)]
)
def test_gauc_equals_per_user_loop(seed, decimals, dtype):
    # float32 scores take the IEEE-bits path, other float64 the dense-rank path
    y, p = _data(seed, 4000, decimals)
    p = p.astype(dtype)
    rng = np.random.default_rng(seed + 100)
    users = np.array([f"user-{k}" for k in rng.zipf(1.6, len(y)) % 400])  # string ids, heavy tail
    ref, skipped_users, skipped_imps = _gauc_reference(y, p, users)
    res = gauc(y, p, users)
    assert skipped_users > 0  # the data do contain single-class users
    assert res.gauc == pytest.approx(ref, abs=1e-12)
    assert (res.skipped_users, res.skipped_impressions) == (skipped_users, skipped_imps)
    assert res.users + res.skipped_users == len(np.unique(users))


def test_gauc_on_logits_with_signed_zeros_and_ties():
    rng = np.random.default_rng(9)
    y = (rng.random(600) < 0.4).astype(np.int8)
    z = np.round(rng.normal(0, 1, 600) + y, 1).astype(np.float32)  # negative, positive, ties
    z[:40] = np.where(np.arange(40) % 2 == 0, -0.0, 0.0)  # -0.0 ties with 0.0
    users = rng.integers(0, 30, 600)
    ref, _, _ = _gauc_reference(y, z, users)
    assert gauc(y, z, users).gauc == pytest.approx(ref, abs=1e-12)
    assert auc(y, z) == pytest.approx(roc_auc_score(y, z), abs=1e-12)
    z64 = z.astype(np.float64) + 1e-9 * (np.arange(600) % 3)  # not float32-exact: rank path
    ref64, _, _ = _gauc_reference(y, z64, users)
    assert gauc(y, z64, users).gauc == pytest.approx(ref64, abs=1e-12)


def test_gauc_differs_from_auc_and_handles_degenerate_users():
    # user a ranks perfectly, user b inversely: GAUC weights them by impressions (3 vs 2)
    y = np.array([1, 0, 0, 1, 0, 1])
    p = np.array([0.9, 0.1, 0.2, 0.1, 0.8, 0.5])
    users = np.array(["a", "a", "a", "b", "b", "c"])
    res = gauc(y, p, users)
    assert res.gauc == pytest.approx((3 * 1.0 + 2 * 0.0) / 5)
    assert (res.users, res.skipped_users, res.skipped_impressions) == (2, 1, 1)
    only_one_class = gauc(np.array([1, 1, 0]), np.array([0.2, 0.3, 0.4]), np.array([1, 1, 2]))
    assert math.isnan(only_one_class.gauc) and only_one_class.skipped_users == 2


def test_pcoc_and_weighted_logloss_by_hand():
    y = np.array([1, 1, 0, 0])
    p = np.array([0.8, 0.5, 0.1, 0.2])
    assert pcoc(y, p) == pytest.approx((1.6 / 4) / 0.5)
    assert pcoc_deviation(y, p) == pytest.approx(0.2)
    expected = 0.5 * -(np.log(0.8) + np.log(0.5)) / 2 + 0.5 * -(np.log(0.9) + np.log(0.8)) / 2
    assert weighted_logloss(y, p) == pytest.approx(expected)
    assert math.isnan(weighted_logloss(np.array([0, 0]), np.array([0.1, 0.2])))
    assert math.isnan(pcoc(np.array([0, 0]), np.array([0.1, 0.2])))


def test_degenerate_inputs_give_nan_not_errors():
    assert math.isnan(auc([1, 1, 1], [0.1, 0.2, 0.3]))
    assert math.isnan(average_precision([0, 0], [0.1, 0.2]))
    assert logloss([1, 0], [1.0, 0.0]) == pytest.approx(0.0, abs=1e-12)  # clipped, finite
    empty = evaluate(np.array([], dtype=np.int8), np.array([]), np.array([]))
    assert empty["n"] == 0 and math.isnan(empty["auc"]) and math.isnan(empty["gauc"])


@pytest.mark.parametrize(
    ("y", "p", "users", "match"),
    [
        ([0, 1, 1], [0.1, 0.2], None, "y_true has 3 rows but y_prob has 2"),
        ([0, 1], [0.1, 1.5], None, "y_prob: row 1 is 1.5; expected a probability"),
        ([0, 1], [np.nan, 0.5], None, "y_prob: row 0 is nan; expected a finite number"),
        ([0, 2], [0.1, 0.5], None, "y_true: expected 0/1 labels, row 1 is 2"),
        ([0, 1], [0.1, 0.5], ["a"], "user_ids has 1"),
        ([0, 1], [0.1, 0.5], ["a", None], "user_ids: row 1 is None"),
    ],
)
def test_bad_input_is_named(y, p, users, match):
    with pytest.raises(ValueError, match=match):
        evaluate(np.array(y), np.array(p), None if users is None else np.array(users, dtype=object))


def test_evaluate_and_segments():
    y, p = _data(7, 3000, 2, ctr=0.1)
    users = np.arange(len(y)) % 150
    m = evaluate(y, p, users)
    assert set(m) >= {"auc", "gauc", "gauc_users", "pcoc", "pcoc_dev", "logloss", "ap",
                      "weighted_logloss", "n", "n_pos", "ctr"}
    assert (m["n"], m["n_pos"]) == (3000, int(y.sum()))
    assert m["ctr"] == pytest.approx(y.mean())
    assert m["gauc"] == pytest.approx(gauc(y, p, users).gauc)
    assert math.isnan(evaluate(y, p)["gauc"])
    cold = users < 30
    segs = evaluate_segments(y, p, users, {"all": np.ones(len(y), bool), "cold_start": cold,
                                           "none": np.zeros(len(y), bool)})
    assert segs["all"] == m
    assert segs["cold_start"]["auc"] == pytest.approx(auc(y[cold], p[cold]))
    assert segs["cold_start"]["n"] == cold.sum() and segs["none"]["n"] == 0
    with pytest.raises(ValueError, match="segment 'x': expected a boolean mask"):
        evaluate_segments(y, p, users, {"x": cold.astype(int)})
    with pytest.raises(ValueError, match="segment 'x': mask has shape"):
        evaluate_segments(y, p, users, {"x": cold[:10]})
