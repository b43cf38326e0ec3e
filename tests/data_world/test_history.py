"""History builder: matches a plain per-request reference, never leaks, respects m and the training window."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from sklearn.feature_extraction.text import HashingVectorizer

from llm2ctr.data.config import HistoryConfig
from llm2ctr.data.history import (
    HISTORY_SCHEMA,
    EmbeddingSimilarity,
    TokenOverlapSimilarity,
    build_history,
    make_similarity,
)
from llm2ctr.data.store import load_events, load_table


def _reference(ev, cfg: HistoryConfig, request_ids):
    """The definition, one request at a time (pandas), for a sample of requests."""
    beh = ev[ev["click"] == 1] if cfg.behaviour == "click" else ev
    train = ev[ev["split"] == "train"]
    activity = train.groupby(["category", "user_id"])["request_id"].nunique().reset_index()
    activity = activity.sort_values(["category", "request_id", "user_id"], ascending=[True, False, True])
    top = activity.groupby("category").head(cfg.top_users_per_category)
    top_set = set(zip(top["category"], top["user_id"], strict=True))
    in_top = np.array([(c, u) in top_set for c, u in zip(beh["category"], beh["user_id"], strict=True)])
    queries = sorted(ev["query"].unique())
    vecs = TokenOverlapSimilarity().vectors(queries)
    qidx = {q: i for i, q in enumerate(queries)}
    first = ev.drop_duplicates("request_id").set_index("request_id")
    out = {}
    for rid in request_ids:
        r = first.loc[rid]
        own = beh[(beh["user_id"] == r["user_id"]) & (beh["ts"] < r["ts"])]
        own = own.sort_values("ts", kind="stable").tail(cfg.max_user_history)
        pool = beh[(beh["category"] == r["category"]).to_numpy() & (beh["ts"] < r["ts"]).to_numpy() & in_top]
        pool = pool.sort_values("ts", kind="stable").reset_index(drop=True)
        sims = (vecs[[qidx[q] for q in pool["query"]]] @ vecs[qidx[r["query"]]].T).toarray().ravel()
        pool = pool.assign(sim=np.rint(sims * 1e6), order=np.arange(len(pool)), s=sims)
        best = pool.sort_values(["sim", "order"], ascending=False).head(cfg.cross_user_k)
        out[rid] = (own["pair_id"].tolist(), own["ts"].tolist(), best["pair_id"].tolist(), best["s"].tolist())
    return out


def test_history_matches_the_reference_definition(world):
    ev = load_events(world.stage_dir("data", "events")).to_pandas()
    hist = load_table(world.stage_dir("data", "history"), "history")
    assert [(f.name, f.type) for f in hist.schema] == [(f.name, f.type) for f in HISTORY_SCHEMA]
    h = hist.to_pandas().set_index("request_id")
    rng = np.random.default_rng(0)
    sample = rng.choice(h.index.to_numpy(), 60, replace=False).tolist() + [h.index[-1]]
    ref = _reference(ev, world.data.history, sample)
    for rid, (pairs, ts, cross, sims) in ref.items():
        row = h.loc[rid]
        assert list(row["hist_pair_ids"]) == pairs and list(row["hist_ts"]) == ts, rid
        assert list(row["cross_pair_ids"]) == cross, rid
        np.testing.assert_allclose(row["cross_sim"], sims, atol=1e-5)
    assert any(len(v[2]) > 0 for v in ref.values()) and any(len(v[0]) > 0 for v in ref.values())


def test_no_leakage_and_m_limit(world):
    ev = load_events(world.stage_dir("data", "events"))
    cfg = HistoryConfig(max_user_history=3, behaviour="impression", cross_user_k=5)
    h = build_history(ev, cfg).to_pandas()
    req_ts = ev.to_pandas().drop_duplicates("request_id").set_index("request_id")["ts"]
    lens = h["hist_pair_ids"].map(len)
    assert (lens <= 3).all() and (h["n_hist"] == lens).all() and lens.max() == 3
    hist_ts = h.set_index("request_id")["hist_ts"]
    assert all((np.asarray(t) < req_ts[r]).all() for r, t in hist_ts.items())
    assert all(list(t) == sorted(t) for t in hist_ts)  # oldest first
    assert h["hist_clicks"].map(lambda c: 0 in c).any()  # impressions, not only clicks
    assert (h["cross_pair_ids"].map(len) <= 5).all()
    assert all(list(s) == sorted(s, reverse=True) for s in h["cross_sim"])  # best first


def test_cross_users_come_from_the_training_window_only(world):
    ev = load_events(world.stage_dir("data", "events"))
    df = ev.to_pandas()
    cat = df["category"].iloc[0]
    test = df[df["split"] == "test"]
    # a user who floods the category in the test window with clicks on unmistakable pair ids
    flood = test[test["category"] == cat].head(300).copy()
    flood["user_id"] = "u_flood"
    flood["request_id"] = "rf" + flood["request_id"]
    flood["pair_id"] = "zz" + flood["pair_id"]
    flood["click"] = np.int8(1)
    both = pa.concat_tables([ev, pa.Table.from_pandas(flood, schema=ev.schema, preserve_index=False)])
    h = build_history(both, HistoryConfig()).to_pandas()
    cross = [p for ps in h["cross_pair_ids"] for p in ps]
    assert cross and not any(p.startswith("zz") for p in cross)
    # the same user in the training window does get picked
    both = both.set_column(both.schema.get_field_index("split"), "split",
                           pa.array(np.where(np.char.startswith(both.column("pair_id").to_numpy(zero_copy_only=False)
                                                                .astype(str), "zz"), "train",
                                             both.column("split").to_numpy(zero_copy_only=False))))
    h2 = build_history(both, HistoryConfig()).to_pandas()
    assert any(p.startswith("zz") for ps in h2["cross_pair_ids"] for p in ps)


def test_every_request_has_one_row_shared_by_events_and_counterfactual(world):
    hist = load_table(world.stage_dir("data", "history"), "history")
    ev = load_events(world.stage_dir("data", "events"))
    cf = load_events(world.stage_dir("data", "counterfactual"))
    ids = hist.column("request_id").to_pylist()
    assert len(ids) == len(set(ids))
    assert set(ids) == set(ev.column("request_id").to_pylist()) == set(cf.column("request_id").to_pylist())


def test_embedding_similarity_plugs_in(world):
    ev = load_events(world.stage_dir("data", "events"))
    hv = HashingVectorizer(n_features=256, alternate_sign=False, norm=None)
    emb = EmbeddingSimilarity(lambda texts: hv.transform(texts).toarray())
    h = build_history(ev, HistoryConfig(cross_user_k=4), emb).to_pandas()
    sims = np.concatenate([np.asarray(s) for s in h["cross_sim"] if len(s)])
    assert sims.max() == pytest.approx(1.0, abs=1e-5) and (sims <= 1.0 + 1e-5).all()
    with pytest.raises(ValueError, match="similarity"):
        make_similarity("nope")


def test_missing_column_is_named():
    t = pa.table({"request_id": ["r1"], "ts": [1]})
    with pytest.raises(ValueError, match="user_id"):
        build_history(t, HistoryConfig(), source="x/events")
