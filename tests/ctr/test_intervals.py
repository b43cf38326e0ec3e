"""Bootstrap intervals equal a direct bootstrap: sklearn / metrics.gauc on explicit resamples."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from llm2ctr.ctr.intervals import (
    SortedScores,
    draw_requests,
    paired_effect,
    request_bootstrap,
    request_weights,
    spearman_replicates,
    verdict,
)
from llm2ctr.ctr.metrics import gauc


def _expanded_auc(s, a, b):
    """sklearn on the expanded set: each row once as a positive (weight a), once as a negative (b)."""
    if a.sum() == 0 or b.sum() == 0:
        return math.nan
    y = np.r_[np.ones(len(s)), np.zeros(len(s))]
    return roc_auc_score(y, np.r_[s, s], sample_weight=np.r_[a, b])


def _gauc_loop(s, a, b, r, groups):
    num = den = 0.0
    for g in np.unique(groups):
        m = groups == g
        ra, rb = r[m] * a[m], r[m] * b[m]
        if ra.sum() > 0 and rb.sum() > 0:
            num += r[m].sum() * _expanded_auc(s[m], ra, rb)
            den += r[m].sum()
    return num / den if den else math.nan


def _data(seed, n, n_groups=30):
    rng = np.random.default_rng(seed)
    p = rng.random(n) * 0.6
    y = (rng.random(n) < p).astype(np.int8)
    s = np.round(p + rng.normal(0, 0.2, n), 1)  # many ties
    return rng, s, y, p, rng.integers(0, n_groups, n)


@pytest.mark.parametrize(("seed", "n"), [(0, 7), (1, 300), (2, 3000)])
def test_weighted_auc_equals_sklearn_on_expanded_set(seed, n):
    rng, s, y, p, _ = _data(seed, n)
    ss = SortedScores(s)
    assert ss.auc(y, 1 - y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    r = rng.integers(0, 4, size=(5, n)).astype(np.float32)
    reps = ss.auc(y, 1 - y, r)
    assert reps.shape == (5,)
    for k in range(5):
        assert reps[k] == pytest.approx(_expanded_auc(s, r[k] * y, r[k] * (1 - y)), abs=1e-12)
        rk = r[k] * rng.random(n)  # real-valued multiplicities, soft labels
        assert ss.auc(p, 1 - p, rk) == pytest.approx(_expanded_auc(s, rk * p, rk * (1 - p)), abs=1e-12)


def test_auc_degenerate_cases_are_nan_or_half():
    ss = SortedScores([0.3, 0.3, 0.3])
    assert ss.auc([1, 0, 1], [0, 1, 0]) == 0.5
    assert math.isnan(ss.auc([1, 1, 1], [0, 0, 0]))
    assert math.isnan(ss.auc([1, 0, 1], [0, 1, 0], [1, 0, 1]))  # resample without non-clicks
    assert math.isnan(SortedScores([]).auc([], []))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gauc_equals_metrics_gauc_and_a_weighted_loop(seed):
    rng, s, y, p, groups = _data(seed, 2000)
    users = np.array([f"u{g}" for g in groups])
    ss = SortedScores(s, users)
    assert ss.gauc(y, 1 - y) == pytest.approx(gauc(y, s, users).gauc, abs=1e-12)
    r = rng.integers(0, 3, size=(3, len(s))).astype(np.float64) * rng.random(len(s))
    reps = ss.gauc(p, 1 - p, r)
    for k in range(3):
        assert reps[k] == pytest.approx(_gauc_loop(s, p, 1 - p, r[k], groups), abs=1e-12)
        assert ss.gauc(y, 1 - y, r[k]) == pytest.approx(_gauc_loop(s, y, 1 - y, r[k], groups), abs=1e-12)


def test_chunking_does_not_change_values(monkeypatch):
    import llm2ctr.ctr.intervals as iv

    rng, s, y, _, groups = _data(3, 500)
    w = request_bootstrap(groups % 17, 23, rng)
    ss = SortedScores(s, groups)
    full = ss.gauc(y, 1 - y, w), ss.auc(y, 1 - y, w)
    idx = draw_requests(50, 23, rng)
    rho = spearman_replicates(s[:50], y[:50], idx)
    monkeypatch.setattr(iv, "CHUNK_BYTES", 1)  # one replicate per chunk
    np.testing.assert_array_equal(ss.gauc(y, 1 - y, w), full[0])
    np.testing.assert_array_equal(ss.auc(y, 1 - y, w), full[1])
    np.testing.assert_array_equal(spearman_replicates(s[:50], y[:50], idx), rho)


def test_request_bootstrap_replays_one_integers_call():
    codes = np.array([2, 0, 1, 1, 2, 2, 0])
    w = request_bootstrap(codes, 50, np.random.default_rng(5))
    idx = np.random.default_rng(5).integers(0, 3, size=(50, 3))
    assert w.dtype == np.float32 and w.shape == (50, 7)
    for k in range(50):
        np.testing.assert_array_equal(w[k], [np.sum(idx[k] == c) for c in codes])
    np.testing.assert_array_equal(request_weights(codes, idx[10:20]), w[10:20])


@pytest.mark.parametrize("n_seeds", [2, 3])
def test_paired_effect_equals_a_direct_bootstrap(n_seeds):
    """Replay the draws, build each resample with np.repeat, score it with sklearn / metrics.gauc."""
    rng = np.random.default_rng(40 + n_seeds)
    n, n_req, n_boot = 40, 12, 60
    req = np.r_[np.arange(n_req), rng.integers(0, n_req, n - n_req)]  # every request has a row
    users = req % 5  # a request belongs to one user
    p = rng.random(n) * 0.7
    y = (rng.random(n) < p).astype(np.int8)
    scores = np.round(p + rng.normal(0, 0.3, (n_seeds, 2, n)), 1)  # [seed, model, row], ties
    metrics = {
        "auc": (lambda s, yy, pp, u: roc_auc_score(yy, s) if 0 < yy.sum() < len(yy) else math.nan,
                lambda ss: ss.auc(y, 1 - y, w)),
        "auc_truth": (lambda s, yy, pp, u: _expanded_auc(s, pp, 1 - pp), lambda ss: ss.auc(p, 1 - p, w)),
        "gauc": (lambda s, yy, pp, u: gauc(yy, s, u).gauc, lambda ss: ss.gauc(y, 1 - y, w)),
    }
    for name, (direct, fast) in metrics.items():
        rng = np.random.default_rng(7)
        w = request_bootstrap(req, n_boot, rng)  # the request draw, then paired_effect's seed draw
        sorted_ = [[SortedScores(scores[s, m], users) for m in range(2)] for s in range(n_seeds)]
        point = np.array([[direct(scores[s, m], y, p, users) for m in range(2)] for s in range(n_seeds)])
        reps = np.array([[fast(sorted_[s][m]) for m in range(2)] for s in range(n_seeds)])
        got = paired_effect(point[:, 0], point[:, 1], reps[:, 0], reps[:, 1], rng)

        replay = np.random.default_rng(7)
        idx = replay.integers(0, n_req, size=(n_boot, n_req))
        seed_idx = replay.integers(0, n_seeds, size=(n_boot, n_seeds))
        effects = []
        for k in range(n_boot):
            rows = np.repeat(np.arange(n), np.bincount(idx[k], minlength=n_req)[req])
            per_seed = [direct(scores[s, 0, rows], y[rows], p[rows], users[rows])
                        - direct(scores[s, 1, rows], y[rows], p[rows], users[rows]) for s in range(n_seeds)]
            effects.append(np.mean([per_seed[s] for s in seed_idx[k]]))
        effects = np.array(effects)
        kept = effects[~np.isnan(effects)]
        lo, hi = np.percentile(kept, [2.5, 97.5])
        assert got["effect"] == pytest.approx(np.mean(point[:, 0] - point[:, 1]), abs=1e-12), name
        assert (got["ci_low"], got["ci_high"]) == pytest.approx((lo, hi), abs=1e-12), name
        assert got["sd"] == pytest.approx(np.std(kept, ddof=1), abs=1e-12), name
        assert (got["n_seeds"], got["n_boot"], got["n_boot_used"]) == (n_seeds, n_boot, len(kept))


def test_paired_effect_drops_nan_replicates_and_keeps_the_sign():
    rng = np.random.default_rng(0)
    a_reps = rng.normal(1.0, 0.1, (3, 100))
    a_reps[1, :10] = np.nan
    got = paired_effect([1.0, 1.1, 0.9], [0.0, 0.0, 0.0], a_reps, np.zeros((3, 100)), rng)
    assert 0 < got["n_boot_used"] < 100 and got["a_better"] and got["ci_low"] > 0
    loss = paired_effect([0.3, 0.3], [0.5, 0.5], np.full((2, 9), 0.3), np.full((2, 9), 0.5), rng,
                         higher_is_better=False)
    assert loss["effect"] == pytest.approx(-0.2) and loss["a_better"]


def test_spearman_replicates_equal_scipy_on_explicit_resamples():
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=25), 1)
    y = np.round(x + rng.normal(size=25), 0)  # heavy ties
    idx = draw_requests(25, 40, rng)
    idx[0] = 4  # a constant resample: nan, as scipy
    got = spearman_replicates(x, y, idx)
    with np.errstate(invalid="ignore"), pytest.warns(Warning):
        assert math.isnan(spearmanr(x[idx[0]], y[idx[0]])[0]) and math.isnan(got[0])
    for k in range(1, 40):
        assert got[k] == pytest.approx(spearmanr(x[idx[k]], y[idx[k]])[0], abs=1e-12)


def test_verdict_branches():
    assert verdict(0.01, 0.004, 0.016, oracle_gain=0.02, noise_sd=0.0025) == "holds"
    assert verdict(0.001, -0.003, 0.005, oracle_gain=0.02, noise_sd=0.0025) == "falsified"
    assert verdict(0.01, 0.004, 0.016, oracle_gain=0.004, noise_sd=0.0025) == "not testable"
    assert verdict(0.01, 0.004, 0.016, oracle_gain=math.nan, noise_sd=0.0025) == "not testable"
    assert verdict(-0.01, -0.02, -0.004, 0.02, 0.0025, higher_is_better=False) == "holds"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: SortedScores([0.1, np.nan]), "scores: row 1 is nan"),
        (lambda: SortedScores([0.1, 0.2]).auc([1, -1], [0, 1]), "a: row 1 is -1; expected a finite weight"),
        (lambda: SortedScores([0.1, 0.2]).auc([1, 0], [0, 1], [[1, 1], [1, np.inf]]), "r: replicate 1, row 1 is inf"),
        (lambda: SortedScores([0.1, 0.2]).auc([1, 0], [0, 1, 1]), "scores have 2 rows but b has 3"),
        (lambda: SortedScores([0.1, 0.2]).gauc([1, 0], [0, 1]), "built without groups"),
        (lambda: SortedScores([0.1, 0.2], ["a", None]), "groups: row 1 is None"),
        (lambda: request_bootstrap([0, 2], 3, np.random.default_rng()), "code 1 has no row"),
        (lambda: spearman_replicates([1.0, 2.0], [1.0, 2.0], [[0, 2]]), r"rep_idx: replicate 0, row 1 is 2"),
    ],
)
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_timing_auc_replicates_100k_rows_200_replicates():
    """A timing print, not an assertion (timings belong in benchmarks)."""
    rng, s, y, _, groups = _data(0, 100_000, n_groups=5000)
    s = s + rng.random(len(s)) * 1e-3  # mostly distinct scores, as a model's
    w = request_bootstrap(np.arange(len(s)) // 10, 200, rng)  # 10k requests
    t0 = time.perf_counter()
    ss = SortedScores(s, groups)
    t1 = time.perf_counter()
    reps = SortedScores(s).auc(y, 1 - y, w)
    t2 = time.perf_counter()
    greps = ss.gauc(y, 1 - y, w)
    t3 = time.perf_counter()
    assert np.isfinite(reps).all() and np.isfinite(greps).all()
    print(f"\nn=100k B=200: sort {t1 - t0:.3f}s, AUC replicates {t2 - t1:.3f}s, GAUC replicates {t3 - t2:.3f}s")
