"""The query_types world: fine-grained types, type sensitivity and drift, exploration slates, truth."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from llm2ctr.data.config import SimulateConfig
from llm2ctr.data.jobs import load_ground_truth, load_request_truth
from llm2ctr.data.query_types import TOKEN_PATTERN, assign_query_types
from llm2ctr.data.schema import PAIRS_SCHEMA
from llm2ctr.data.simulate import simulate
from llm2ctr.data.simulate_tables import (
    counterfactual_table,
    event_truth_table,
    events_table,
    request_truth_table,
)
from llm2ctr.data.store import load_events, load_pairs


def imported_like_pairs(n_queries: int, n_rsl4: int, per_query: int = 24) -> pa.Table:
    """Required pairs columns only (as `data import` writes them), 6 categories."""
    q, j = np.divmod(np.arange(n_queries * per_query), per_query)
    rsl = np.where(j < n_rsl4, 4, np.random.default_rng(1).integers(1, 4, len(q)))
    return pa.table({"pair_id": [f"{a}-{b}" for a, b in zip(q, j, strict=True)],
                     "query": [f"query {a} cat{a % 6}" for a in q], "item_id": [f"it{v}" for v in (q * 7 + j) % 900],
                     "item_text": [f"brand{b % 5} item {v}" for b, v in zip(j, (q * 7 + j) % 900, strict=True)],
                     "rsl": rsl.astype(np.int8), "category": [f"cat{a % 6}" for a in q], "split": ["train"] * len(q)},
                    schema=PAIRS_SCHEMA)


@pytest.fixture(scope="module")
def synth_pairs(world):
    return load_pairs(world.stage_dir("data", "pairs"))


def test_types_are_per_category_compact_and_deterministic(synth_pairs):
    cfg = SimulateConfig(n_users=50, n_requests=200)
    pool = simulate(synth_pairs, cfg, seed=0).pool
    qt, cat = pool.query_type, pool.query_cat
    assert pool.n_types == qt.max() + 1 and set(np.unique(qt)) == set(range(pool.n_types))
    cats_per_type = np.array([len(np.unique(cat[qt == t])) for t in range(pool.n_types)])
    assert (cats_per_type == 1).all()  # a type never crosses categories
    n_q = np.bincount(cat)
    k = np.array([len(np.unique(qt[cat == c])) for c in range(len(n_q))])
    assert (k <= np.maximum(1, np.floor(n_q / cfg.queries_per_type + 0.5))).all() and k.sum() > 0.8 * n_q.sum() / 4
    assert (simulate(synth_pairs, cfg, seed=0).pool.query_type == qt).all()
    # any table with queries and categories works; types follow the category-major numbering
    again = assign_query_types(pool.query_text, cat, 4.0, np.random.default_rng(7))
    assert (np.diff(cat[np.argsort(again, kind="stable")]) >= 0).all()


def test_similar_queries_share_a_type_more_often_than_random_pairs(synth_pairs):
    pool = simulate(synth_pairs, SimulateConfig(n_users=50, n_requests=200), seed=0).pool
    x = TfidfVectorizer(token_pattern=TOKEN_PATTERN, sublinear_tf=True).fit_transform(pool.query_text.tolist())
    sim = (x @ x.T).toarray()
    same_cat = pool.query_cat[:, None] == pool.query_cat[None, :]
    np.fill_diagonal(same_cat, False)
    sim = np.where(same_cat, sim, -1.0)
    nn = sim.argmax(1)  # most similar other query of the same category
    same_type = pool.query_type[:, None] == pool.query_type[None, :]
    nn_rate = same_type[np.arange(len(nn)), nn].mean()
    random_rate = same_type[same_cat].mean()
    assert nn_rate > 2 * random_rate and nn_rate > 0.5


def test_sensitivity_is_clipped_category_mean_plus_type_effect_plus_user_deviation(synth_pairs):
    cfg = SimulateConfig(n_users=200, n_requests=3000, type_drift_sd=0.3)
    s = simulate(synth_pairs, cfg, seed=1)
    u, r = s.users, s.req
    t = s.query_type
    assert (t == s.pool.query_type[r.query]).all()
    assert (s.day == (r.ts - cfg.start_ts) // 86400).all()
    expected = np.maximum(0.0, u.cat_sens_mean[r.cat] + s.type_effect + u.sens_dev[r.user])
    assert np.array_equal(s.sensitivity, expected)
    assert np.array_equal(s.sensitivity_without_type, np.maximum(0.0, u.cat_sens_mean[r.cat] + u.sens_dev[r.user]))
    assert np.array_equal(s.sensitivity_category, u.cat_sens_mean[r.cat])
    day0 = s.day == 0
    assert np.array_equal(s.type_effect[day0], s.type_static[t[day0]])  # no drift on day 0
    # the type explains sensitivity beyond the category (what cold-start mining can recover)
    resid = s.sensitivity - s.sensitivity_without_type
    assert np.corrcoef(resid, s.type_static[t])[0, 1] > 0.7
    req = request_truth_table(s)
    assert req.num_rows == len(r.user) and req.column("request_id").to_pylist() == sorted(req.column("request_id").to_pylist())
    assert np.allclose(req.column("sensitivity").to_numpy(), s.sensitivity, atol=1e-6)


def test_drift_moves_type_effects_across_days_only_when_its_sd_is_positive(synth_pairs):
    def spread_within_type(drift_sd: float) -> float:
        s = simulate(synth_pairs, SimulateConfig(n_users=100, n_requests=2000, type_drift_sd=drift_sd), seed=2)
        eff = s.type_effect
        lo = np.full(s.pool.n_types, np.inf)
        hi = np.full(s.pool.n_types, -np.inf)
        np.minimum.at(lo, s.query_type, eff)
        np.maximum.at(hi, s.query_type, eff)
        seen = np.isfinite(lo)
        return float((hi - lo)[seen].max())

    assert spread_within_type(0.0) == 0.0
    assert spread_within_type(0.5) > 0.5


def test_without_type_equals_p_click_when_types_have_no_effect(synth_pairs):
    cfg = SimulateConfig(n_users=100, n_requests=1000, type_sensitivity_sd=0.0, type_drift_sd=0.0)
    s = simulate(synth_pairs, cfg, seed=3)
    truth = event_truth_table(s)
    assert truth.column("p_click_without_type").equals(truth.column("p_click"))
    cf = counterfactual_table(s, cfg)
    assert cf.column("p_click_without_type").equals(cf.column("p_click"))
    # ... and with no exploration either, the log is the classic one plus the flag column
    quiet = SimulateConfig(n_users=100, n_requests=1000, type_sensitivity_sd=0.0, type_drift_sd=0.0,
                           random_slate_share=0.0, appeal_by_level=[1.0, 1.0, 1.0, 1.0], exposure_ctr_weight=0.0)
    classic = SimulateConfig(n_users=100, n_requests=1000, world="classic")
    ev = events_table(simulate(synth_pairs, quiet, seed=3), quiet)
    assert not any(ev.column("exploration").to_pylist())
    assert ev.drop_columns(["exploration"]).equals(events_table(simulate(synth_pairs, classic, seed=3), classic))


def test_exploration_share_and_random_slates():
    pairs = imported_like_pairs(n_queries=60, n_rsl4=6)
    share, n = 0.3, 6000
    cfg = SimulateConfig(n_users=300, n_requests=n, random_slate_share=share)
    s = simulate(pairs, cfg, seed=4)
    n_x = int(s.exploration.sum())
    assert abs(n_x - share * n) < 4 * np.sqrt(n * share * (1 - share))
    assert (s.exposed.sum(1) == np.minimum(cfg.slate_size, s.valid.sum(1))).all()  # same slate size
    x = s.exploration
    cand_mix = np.array([np.mean(s.rsl[x][s.valid[x]] == k) for k in (1, 2, 3, 4)])
    slate_mix = np.array([np.mean(s.rsl[x][s.exposed[x]] == k) for k in (1, 2, 3, 4)])
    assert np.abs(slate_mix - cand_mix).max() < 0.02  # unfiltered: the candidates' mix
    policy_rsl4 = np.mean(s.rsl[~x][s.exposed[~x]] == 4)
    assert policy_rsl4 > cand_mix[3] + 0.2  # the policy's slates are filtered
    pos = s.position[x][s.exposed[x]]
    rsl = s.rsl[x][s.exposed[x]]
    assert abs(pos[rsl == 4].mean() - pos.mean()) < 0.2  # random order: relevance does not pick positions
    # calibration covers exploration requests too
    assert np.mean(s.p_exposed[s.exposed]) == pytest.approx(cfg.target_ctr, abs=1e-4)
    ev = events_table(s, cfg)
    assert ev.column("exploration").to_numpy(zero_copy_only=False).sum() == n_x * cfg.slate_size


def test_artifacts_carry_the_truth(world):
    gt = world.stage_dir("data", "ground_truth")
    _, truth, params = load_ground_truth(gt)
    req = load_request_truth(gt)
    ev = load_events(world.stage_dir("data", "events"))
    cf = load_events(world.stage_dir("data", "counterfactual")).to_pandas()
    assert req.num_rows == len(set(ev.column("request_id").to_pylist()))
    assert set(req.column_names) >= {"request_id", "user_id", "day", "query_type", "sensitivity",
                                     "sensitivity_without_type", "sensitivity_category", "exploration"}
    assert params["world"] == "query_types" and params["n_types"] == len(params["type_effect_static"]) > 24
    assert params["exploration_requests"] == int(req.column("exploration").to_numpy(zero_copy_only=False).sum())
    for col in ("p_click_without_type", "p_click_without_rsl"):
        assert cf[col].between(0, 1).all() and truth.column(col).to_numpy().max() <= 1
    assert "exploration" in ev.column_names and not any(c.startswith(("f_", "n_")) for c in
                                                        ("p_click_without_type", "p_click_without_rsl"))
    # removing the relevance term costs more than removing the type effect (both are real signals)
    p = cf["p_click"].to_numpy()
    assert np.abs(p - cf["p_click_without_rsl"]).mean() > np.abs(p - cf["p_click_without_type"]).mean() > 0
