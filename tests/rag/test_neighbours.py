"""The leakage guard, the majority / edge-case rule and the widening search, on hand-made data."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from llm2ctr.rag.index import IndexParams, build_index
from llm2ctr.rag.neighbours import Guard, compact, majority_label, retrieve, select, text_codes, to_table


def _pairs(queries, items, rsl, split) -> pa.Table:
    n = len(queries)
    return pa.table({
        "pair_id": [f"p{i}" for i in range(n)], "query": queries, "item_id": [f"i{i}" for i in range(n)],
        "item_text": items, "rsl": pa.array(rsl, pa.int8()), "category": ["c"] * n, "split": split,
    })


def test_text_codes_ignore_case_and_whitespace():
    codes = text_codes(pa.chunked_array([["Red  Shoe", "red shoe "], [" RED SHOE", "blue"]]))
    assert codes[0] == codes[1] == codes[2] != codes[3]


def test_guard_mask_rules():
    t = _pairs(
        ["q a", "q a", "Q  A", "q b", "q b", "q c", "q d", "q e"],
        ["x", "y", "x", "z", "w", "v", "u", "t"],
        [4, 3, 2, None, 1, 2, 3, 4],
        ["train", "train", "train", "train", "train", "valid", "test", "train"],
    )
    g = Guard.from_pairs(t, exclude_same_query=False)
    cand = np.array([[0, 1, 2, 3, 4, 5, 6, 7, -1]])
    ok = g.mask(np.array([0]), cand)[0]
    # self, same query+text (row 2), unlabelled (3), valid (5), test (6), padding: refused
    assert ok.tolist() == [False, True, False, False, True, False, False, True, False]
    g2 = Guard.from_pairs(t, exclude_same_query=True)
    assert g2.mask(np.array([0]), cand)[0].tolist() == [False, False, False, False, True, False, False, True, False]


def test_guard_keeps_first_of_duplicate_candidates():
    t = _pairs(["q a", "q b", "q b", "q c"], ["x", "y", " Y", "z"], [4, 3, 1, 2], ["train"] * 4)
    g = Guard.from_pairs(t)
    ok = g.mask(np.array([0, 0]), np.array([[2, 3, 1], [1, 2, 3]]))
    assert ok.tolist() == [[True, True, False], [True, False, True]]


def test_compact_keeps_order_and_pads():
    rows = np.array([[5, 6, 7, 8], [1, 2, 3, 4]])
    sims = np.array([[0.9, 0.8, 0.7, 0.6], [0.5, 0.4, 0.3, 0.2]], dtype=np.float32)
    ok = np.array([[False, True, False, True], [False, False, False, True]])
    r, s = compact(rows, sims, ok, 3)
    assert r.tolist() == [[6, 8, -1], [4, -1, -1]]
    assert s[0, :2].tolist() == [np.float32(0.8), np.float32(0.6)] and np.isneginf(s[1, 1:]).all()


def test_majority_label_counts_then_similarity():
    labels = np.array([[4, 4, 2, 0], [2, 3, 3, 2], [1, 1, 1, 0], [0, 0, 0, 0]])
    sims = np.array([[.9, .8, .7, 0], [.9, .5, .5, .2], [.9, .8, .7, 0], [0, 0, 0, 0]], dtype=np.float32)
    present = labels > 0
    # row 1: 2 twice (sum 1.1) vs 3 twice (sum 1.0) -> 2; row 3 empty -> 0
    assert majority_label(labels, sims, present).tolist() == [4, 2, 1, 0]


def test_select_edge_cases_follow_the_rule():
    rsl = np.array([4, 4, 4, 2, 4, 1, 3, 4], dtype=np.int8)
    rows = np.array([[0, 1, 2, 3, 4, 5, 6, 7], [7, 6, 5, -1, -1, -1, -1, -1]])
    sims = np.linspace(0.9, 0.2, 8, dtype=np.float32)[None, :].repeat(2, axis=0)
    sims[1, 3:] = -np.inf
    sel = select(rows, sims, rsl, k=3, k_edge=2, edge_min_sim=0.4)
    assert sel.majority.tolist() == [4, 4]
    # row 0: after the 3 neighbours, labels 2 (0.6), 4, 1 (0.4), 3 (0.3 < min sim): edges 3 and 5
    assert sel.edge_rows.tolist() == [[3, 5], [-1, -1]]
    assert sel.nb_rows.tolist() == [[0, 1, 2], [7, 6, 5]]


def test_retrieve_widens_rows_whose_nearest_are_all_refused():
    """Query 0's 30 nearest share its query (refused): the first fetch is too small, the widened one is not."""
    rng = np.random.default_rng(0)
    n_same, n_other = 30, 20
    base = rng.standard_normal(16)
    same = base + 0.01 * rng.standard_normal((n_same, 16))
    other = base + 0.5 * rng.standard_normal((n_other, 16))
    x = np.vstack([same, other]).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    n = len(x)
    t = _pairs(["q same"] * n_same + [f"q{i}" for i in range(n_other)], [f"t{i}" for i in range(n)],
               [4] * n, ["train"] * n)
    g = Guard.from_pairs(t)
    index = build_index(x, IndexParams("flat"), progress=False)
    rows, sims = retrieve(index, x[:1], np.array([0]), np.arange(n), g, want=5, overfetch=2.0)
    assert (rows >= n_same).all(), rows  # full row, all from other queries
    assert np.all(np.diff(sims[0]) <= 0)
    exact = np.argsort(-(x[n_same:] @ x[0]))[:5] + n_same
    assert rows[0].tolist() == exact.tolist()


def test_to_table_lists_align_with_rows():
    t = _pairs(["a", "b", "c"], ["x", "y", "z"], [4, None, 2], ["train", "test", "train"])
    sel = select(np.array([[2, -1], [0, 2], [0, -1]]), np.full((3, 2), 0.5, np.float32),
                 np.array([4, 0, 2], np.int8), k=1, k_edge=1, edge_min_sim=0.0)
    out = to_table(t, sel)
    assert out.column("pair_id").to_pylist() == ["p0", "p1", "p2"]
    assert out.column("nb_pair_ids").to_pylist() == [["p2"], ["p0"], ["p0"]]
    assert out.column("nb_rsl").to_pylist() == [[2], [4], [4]]
    assert out.column("edge_pair_ids").to_pylist() == [[], ["p2"], []]
    assert out.schema.field("nb_rsl").type == pa.list_(pa.int8())
    assert out.schema.field("edge_sim").type == pa.list_(pa.float32())
