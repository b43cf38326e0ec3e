"""Splits: exact sizes, determinism, and no leakage for every method."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from llm2ctr import cli
from llm2ctr.artifacts import read_manifest
from llm2ctr.cli.common import UserError
from llm2ctr.data.splits import assign_event_splits, assign_pair_splits, split_counts
from llm2ctr.data.store import load_events, load_pairs, save_table


def pairs(n=3000, n_queries=300, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.integers(0, n_queries, n)
    return pa.table({
        "pair_id": [f"p{i}" for i in range(n)], "query": [f"q{k}" for k in q],
        "item_id": [f"i{i}" for i in range(n)], "item_text": [f"t{i}" for i in range(n)],
        "rsl": pa.array(rng.integers(1, 5, n), pa.int8()), "category": ["c"] * n, "split": [""] * n,
    })


def events(n=5000, seed=0):
    rng = np.random.default_rng(seed)
    return pa.table({
        "request_id": [f"r{k}" for k in rng.integers(0, 800, n)],
        "user_id": [f"u{k}" for k in rng.integers(0, 200, n)],
        "ts": pa.array(rng.integers(0, 9 * 86400, n), pa.int64()),
        "query": ["q"] * n, "category": ["c"] * n, "item_id": ["i"] * n, "pair_id": ["p"] * n,
        "position": pa.array(np.ones(n), pa.int16()), "click": pa.array(np.zeros(n), pa.int8()),
        "rsl": pa.array(np.full(n, 4), pa.int8()),
    })


def max_splits_per_key(table, key):
    g = table.group_by(key).aggregate([("split", "count_distinct")])
    return pc.max(g.column("split_count_distinct")).as_py()


def test_pairs_by_query_never_share_a_query_and_sizes_are_exact():
    t = assign_pair_splits(pairs(), "query", 0.1, 0.2, seed=1)
    assert max_splits_per_key(t, "query") == 1
    per_query = t.group_by(["query", "split"]).aggregate([]).column("split").to_pylist()
    n_q = len(per_query)
    assert per_query.count("test") == round(n_q * 0.2) and per_query.count("valid") == round(n_q * 0.1)


def test_pairs_split_depends_on_keys_and_seed_not_row_order():
    t = pairs()
    a = assign_pair_splits(t, "query", seed=3)
    perm = np.random.default_rng(0).permutation(t.num_rows)
    b = assign_pair_splits(t.take(perm), "query", seed=3)
    da = dict(zip(a.column("pair_id").to_pylist(), a.column("split").to_pylist(), strict=True))
    db = dict(zip(b.column("pair_id").to_pylist(), b.column("split").to_pylist(), strict=True))
    assert da == db
    c = assign_pair_splits(t, "query", seed=4)
    assert c.column("split").to_pylist() != a.column("split").to_pylist()


def test_pairs_random_split_sizes():
    counts = split_counts(assign_pair_splits(pairs(1000), "random", 0.1, 0.1, seed=0))
    assert counts == {"train": 800, "valid": 100, "test": 100}


@pytest.mark.parametrize("method, key", [("user", "user_id"), ("request", "request_id")])
def test_event_group_splits_do_not_leak(method, key):
    t = assign_event_splits(events(), method, 0.1, 0.2, seed=0)
    assert max_splits_per_key(t, key) == 1
    assert set(split_counts(t)) == {"train", "valid", "test"}


def test_event_time_split_train_before_test():
    t = assign_event_splits(events(), "time", 0.0, 2 / 9)
    ts = t.column("ts").to_numpy()
    split = np.asarray(t.column("split").to_pylist())
    assert ts[split == "train"].max() < ts[split == "test"].min()
    assert 0.18 < (split == "test").mean() < 0.27  # ~2 of 9 days
    t = assign_event_splits(events(), "time", 0.1, 0.2)
    split = np.asarray(t.column("split").to_pylist())
    assert ts[split == "train"].max() < ts[split == "valid"].min() <= ts[split == "valid"].max() < ts[
        split == "test"].min()


def test_event_random_split_and_bad_arguments():
    assert sum(split_counts(assign_event_splits(events(100), "random", 0.0, 0.3)).values()) == 100
    with pytest.raises(UserError, match="unknown events split method 'query'"):
        assign_event_splits(events(10), "query")
    with pytest.raises(UserError, match="sum below 1"):
        assign_pair_splits(pairs(10), "query", 0.6, 0.5)


def test_cli_split_rewrites_pairs_and_events_atomically(tmp_path, capsys):
    work = tmp_path / "w"
    save_table(pairs(500), work / "data" / "pairs", kind="pairs", stage="test", source={"path": "x"})
    save_table(assign_event_splits(events(500), "random"), work / "data" / "events", kind="events", stage="test")
    assert cli.main(["data", "split", "--kind", "pairs", "--test-share", "0.3", f"workdir={work}"]) == 0
    p = load_pairs(work / "data" / "pairs")
    assert max_splits_per_key(p, "query") == 1
    m = read_manifest(work / "data" / "pairs", "pairs")
    assert m["split"]["method"] == "query" and m["split"]["test_share"] == 0.3 and m["source"] == {"path": "x"}
    assert cli.main(["data", "split", "--kind", "events", "--method", "user", f"workdir={work}"]) == 0
    assert max_splits_per_key(load_events(work / "data" / "events"), "user_id") == 1
    assert cli.main(["data", "split", "--kind", "events", "--method", "nope", f"workdir={work}"]) == 2
    assert "unknown events split method 'nope'" in capsys.readouterr().err
    assert not [x for x in (work / "data").iterdir() if x.name.startswith(".")]  # no temp dirs left
