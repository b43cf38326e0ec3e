"""Click simulator invariants: exposure share, calibrated CTR, determinism, counterfactual coverage, truth."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pytest

from llm2ctr.data.config import SimulateConfig
from llm2ctr.data.jobs import load_ground_truth, run_simulate
from llm2ctr.data.schema import PAIRS_SCHEMA
from llm2ctr.data.simulate import simulate
from llm2ctr.data.simulate_tables import counterfactual_table, events_table
from llm2ctr.data.store import load_events, load_pairs, save_table


def imported_like_pairs(n_queries: int = 120, per_query: int = 24, n_rsl4: int = 12, unlabelled: int = 2) -> pa.Table:
    """Only the required pairs columns, as `data import` writes them; a few unlabelled rows per query."""
    rng = np.random.default_rng(1)
    rows = []
    for q in range(n_queries):
        cat = f"cat{q % 6}"
        for j in range(per_query):
            rsl = 4 if j < n_rsl4 else int(rng.integers(1, 4))
            rows.append({"pair_id": f"{q}-{j}", "query": f"query {q} {cat}", "item_id": f"it{(q * 7 + j) % 900}",
                         "item_text": f"brand{j % 5} item {(q * 7 + j) % 900}", "rsl": None if j >= per_query - unlabelled else rsl,
                         "category": cat, "split": "train"})
    return pa.Table.from_pylist(rows, schema=PAIRS_SCHEMA)


def test_imported_pairs_exposure_share_and_ctr_hit_their_targets(tmp_path):
    pairs = imported_like_pairs()
    cfg = SimulateConfig(n_users=300, n_requests=6000, candidates_per_request=24)
    sim = simulate(pairs, cfg, seed=0)
    assert sim.pool.n_unlabelled == 120 * 2
    exposed_rsl = sim.rsl[sim.exposed & ~sim.exploration[:, None]]  # the policy's slates
    # 12 rsl-4 of 22 labelled candidates: the policy can honour 80% of a 10-item slate
    assert np.mean(exposed_rsl == 4) == pytest.approx(cfg.exposed_rsl4_share, abs=0.01)
    assert np.mean(sim.p_exposed[sim.exposed]) == pytest.approx(cfg.target_ctr, abs=1e-4)
    assert np.mean(sim.click[sim.exposed]) == pytest.approx(cfg.target_ctr, abs=0.008)
    events = events_table(sim, cfg)
    assert set(events.column("pair_id").to_pylist()) <= set(pairs.column("pair_id").to_pylist())
    # the full job runs on an imported-like artifact too
    from llm2ctr.config import load_config

    full = load_config(None, [f"workdir={tmp_path}", "data.simulate.n_requests=500", "data.simulate.n_users=100"])
    save_table(pairs, tmp_path / "imported", kind="pairs", stage="test")
    out = run_simulate(full, pairs_dir=tmp_path / "imported")
    assert out["unlabelled_pairs_skipped"] == 240 and out["event_rows"] > 0
    assert out["world"] == "query_types" and out["n_types"] >= 6 and out["exploration_requests"] > 0


def test_a_query_without_enough_exact_items_degrades_gracefully():
    pairs = imported_like_pairs(n_queries=30, n_rsl4=3, unlabelled=0)
    sim = simulate(pairs, SimulateConfig(n_users=50, n_requests=500), seed=0)
    slate = sim.exposed.sum(1)
    assert (slate == 10).all()  # the slate is still full, exploration slates too ...
    policy = sim.exposed & ~sim.exploration[:, None]
    assert np.mean(sim.rsl[policy] == 4) == pytest.approx(0.3, abs=0.001)  # ... with every rsl-4 item in it


def test_same_seed_same_log():
    pairs = imported_like_pairs(n_queries=40)
    cfg = SimulateConfig(n_users=100, n_requests=800)
    a, b = simulate(pairs, cfg, seed=5), simulate(pairs, cfg, seed=5)
    assert events_table(a, cfg).equals(events_table(b, cfg))
    assert counterfactual_table(a, cfg).equals(counterfactual_table(b, cfg))
    c = simulate(pairs, cfg, seed=6)
    assert not events_table(a, cfg).equals(events_table(c, cfg))


def table_digest(*tables: pa.Table) -> str:
    """Content hash of tables (names, types, values), independent of the Arrow file layout."""
    h = hashlib.sha256()
    for t in tables:
        for name, col in zip(t.column_names, t.columns, strict=True):
            h.update(f"{name}:{col.type}".encode())
            arr = col.combine_chunks()
            if pa.types.is_string(arr.type):
                h.update("\x1f".join(arr.to_pylist()).encode())
            else:
                h.update(np.ascontiguousarray(arr.to_numpy(zero_copy_only=False)).tobytes())
    return h.hexdigest()


# computed with the simulator before worlds existed (commit 23adb98), same pairs, configs and seeds
CLASSIC_DIGEST = "e01a1a95ee5f48e47860f8b55e28a06717fd7f0016de8b0bf8ffb13a8e589f2c"


def test_classic_world_is_byte_identical_to_the_simulator_before_worlds():
    tables = []
    for pairs, cfg, seed in [
        (imported_like_pairs(n_queries=40), SimulateConfig(n_users=100, n_requests=800, world="classic"), 5),
        (imported_like_pairs(n_queries=30, n_rsl4=3, unlabelled=0),
         SimulateConfig(n_users=50, n_requests=300, seed=2, world="classic",  # new knobs are ignored there
                        type_sensitivity_sd=3.0, type_drift_sd=1.0, random_slate_share=0.5), 1),
    ]:
        sim = simulate(pairs, cfg, seed=seed)
        tables += [events_table(sim, cfg), counterfactual_table(sim, cfg)]
    assert "exploration" not in tables[0].column_names
    assert table_digest(*tables) == CLASSIC_DIGEST


def test_events_contract_positions_time_split(world):
    ev = load_events(world.stage_dir("data", "events")).to_pandas()
    pairs = load_pairs(world.stage_dir("data", "pairs"))
    assert set(ev["pair_id"]) <= set(pairs.column("pair_id").to_pylist())
    assert ev["ts"].dtype == np.int64 and ev["ts"].is_monotonic_increasing
    pos = ev.groupby("request_id")["position"].agg(["min", "max", "count"])
    assert (pos["min"] == 1).all() and (pos["max"] == pos["count"]).all()
    assert len([c for c in ev.columns if c.startswith("f_")]) >= 4
    assert len([c for c in ev.columns if c.startswith("n_")]) >= 2
    sim = world.data.simulate
    test_from = sim.start_ts + (sim.days - sim.test_days) * 86400
    assert ((ev["ts"] >= test_from) == (ev["split"] == "test")).all()
    assert ev["split"].eq("test").mean() == pytest.approx(sim.test_days / sim.days, abs=0.05)
    # higher positions and higher relevance are clicked more
    by_pos = ev.groupby("position")["click"].mean()
    assert by_pos.iloc[0] > 2 * by_pos.iloc[-1]
    by_rsl = ev.groupby("rsl")["click"].mean()
    assert by_rsl[4] > by_rsl[3] > by_rsl[1]


def test_counterfactual_covers_every_candidate_and_matches_exposures(world):
    ev = load_events(world.stage_dir("data", "events")).to_pandas()
    cf = load_events(world.stage_dir("data", "counterfactual")).to_pandas()
    pairs = load_pairs(world.stage_dir("data", "pairs")).to_pandas()
    assert set(cf["request_id"]) == set(ev["request_id"])
    pool_size = pairs.groupby("query").size().clip(upper=world.data.simulate.candidates_per_request)
    per_req = cf.groupby("request_id").agg(query=("query", "first"), n=("pair_id", "size"),
                                           distinct=("pair_id", "nunique"))
    assert (per_req["n"] == pool_size.loc[per_req["query"]].to_numpy()).all()
    assert (per_req["n"] == per_req["distinct"]).all()
    exposed = cf[cf["exposed"]]
    assert set(zip(exposed["request_id"], exposed["pair_id"], strict=True)) == set(
        zip(ev["request_id"], ev["pair_id"], strict=True))
    assert (cf["position"] == 1).all() and cf["p_click"].between(0, 1).all()
    # clicks at position 1 over all candidates follow p_click
    assert cf["click"].mean() == pytest.approx(cf["p_click"].mean(), abs=0.01)


def test_ground_truth_users_heavy_tail_cold_start_and_category_sensitivity(world):
    users, truth, params = load_ground_truth(world.stage_dir("data", "ground_truth"))
    ev = load_events(world.stage_dir("data", "events")).to_pandas()
    assert truth.num_rows == len(ev)
    assert truth.column("request_id").to_pylist() == ev["request_id"].tolist()
    assert truth.column("pair_id").to_pylist() == ev["pair_id"].tolist()
    p = truth.column("p_click").to_numpy()
    assert p.mean() == pytest.approx(world.data.simulate.target_ctr, abs=1e-3)
    n_req = users.column("n_requests").to_numpy()
    assert n_req.sum() == ev["request_id"].nunique()
    assert np.mean(n_req <= 2) > 0.2  # cold start: many users with 0-2 searches
    assert n_req.max() > 10 * max(1, np.median(n_req))  # heavy tail
    # sensitivity follows the query's category
    sens = truth.to_pandas().assign(category=ev["category"].to_numpy()).groupby("category")["sensitivity"].mean()
    assert sens.std() > 0.2
    assert len(params["category_sensitivity_mean"]) == ev["category"].nunique()


def test_features_drive_the_true_click_probability(world):
    _, truth, params = load_ground_truth(world.stage_dir("data", "ground_truth"))
    ev = load_events(world.stage_dir("data", "events")).to_pandas()
    logit = truth.column("logit").to_numpy()
    assert np.corrcoef(logit, ev["n_item_popularity"])[0, 1] > 0.2
    by_brand = ev.assign(logit=logit).groupby("f_item_brand")["logit"].mean()
    assert by_brand.std() > 0.1
    by_seg_price = ev.assign(logit=logit).groupby("f_user_segment").apply(
        lambda d: np.corrcoef(d["logit"], d["n_log_price"])[0, 1], include_groups=False)
    assert by_seg_price["bargain"] < by_seg_price["premium"]


def test_bad_config_names_the_key(world, make_config):
    with pytest.raises(ValueError, match="test_days"):
        simulate(imported_like_pairs(5), SimulateConfig(days=2, test_days=2))
    with pytest.raises(ValueError, match=r"data\.simulate\.world='typo'.*'query_types' or 'classic'"):
        simulate(imported_like_pairs(5), SimulateConfig(world="typo"))
    for key, bad in [("queries_per_type", 0.5), ("type_sensitivity_sd", -1.0), ("type_drift_sd", -0.1),
                     ("random_slate_share", 1.5)]:
        with pytest.raises(ValueError, match=f"data\\.simulate\\.{key}"):
            simulate(imported_like_pairs(5), SimulateConfig(**{key: bad}))
    cfg = make_config(world.stage_dir("x"), "data.simulate.target_ctr=0.99")
    with pytest.raises(ValueError, match="target_ctr"):
        run_simulate(cfg, pairs_dir=world.stage_dir("data", "pairs"))
