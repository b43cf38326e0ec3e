"""The leakage guard for another table's pairs (distillation pairs), on a hand-made flat index."""

from __future__ import annotations

import faiss
import numpy as np
import pyarrow as pa

from llm2ctr.rag.neighbours import Guard, retrieve, select, to_table


def _examples() -> pa.Table:
    return pa.table({
        "pair_id": ["same_q", "valid", "unlabelled", "ok1", "same_pair", "ok2"],
        "query": ["red shoes", "blue shoes", "green shoes", "black shoes", "RED   shoes", "white shoes"],
        "item_text": ["a", "b", "c", "d", "X", "e"],
        "rsl": pa.array([4, 4, None, 3, 2, 1], pa.int8()),
        "split": ["train", "valid", "train", "train", "train", "train"],
    })


def _external() -> pa.Table:
    return pa.table({"pair_id": ["d-1"], "query": ["red shoes"], "item_text": ["x"],
                     "rsl": pa.nulls(1, pa.int8()), "split": ["train"]})


def _search(exclude_same_query: bool) -> tuple[np.ndarray, np.ndarray]:
    ex = _examples()
    # every example row is in the index (as if an index held too much), the forbidden ones most similar
    sims_to_query = np.array([0.99, 0.98, 0.97, 0.5, 0.999, 0.4], np.float32)
    vecs = np.stack([sims_to_query, np.sqrt(1 - sims_to_query**2)], axis=1).astype(np.float32)
    index = faiss.IndexFlatIP(2)
    index.add(vecs)
    guard = Guard.for_external(ex, _external(), exclude_same_query)
    q = np.array([[1.0, 0.0]], np.float32)
    return retrieve(index, q, np.array([ex.num_rows]), np.arange(ex.num_rows), guard, want=4)


def test_external_pairs_get_only_labelled_train_examples_of_other_queries():
    ex = _examples()
    ids = ex.column("pair_id").to_pylist()
    rows, sims = _search(exclude_same_query=True)
    got = [ids[r] for r in rows[0] if r >= 0]
    assert got == ["ok1", "ok2"]  # not the valid, unlabelled, same-query or same-pair rows
    assert np.all(np.diff(sims[0][: len(got)]) <= 0)

    rows, _ = _search(exclude_same_query=False)
    got = [ids[r] for r in rows[0] if r >= 0]
    assert got == ["same_q", "ok1", "ok2"]  # same query allowed now; same (query, item text) never

    sel = select(rows, np.array([[0.99, 0.5, 0.4, -np.inf]], np.float32),
                 np.asarray(ex.column("rsl").fill_null(0).to_numpy(zero_copy_only=False), np.int8),
                 k=2, k_edge=1, edge_min_sim=0.0)
    table = to_table(ex, sel, row_ids=_external().column("pair_id"))
    row = table.to_pylist()[0]
    assert row["pair_id"] == "d-1"
    assert row["nb_pair_ids"] == ["same_q", "ok1"] and row["nb_rsl"] == [4, 3]
    assert row["edge_pair_ids"] == ["ok2"] and row["edge_rsl"] == [1]


def test_external_rows_are_never_retrievable_even_if_labelled_train():
    ext = _external().set_column(3, "rsl", pa.array([4], pa.int8()))
    guard = Guard.for_external(_examples(), ext)
    assert guard.retrievable.tolist() == [True, False, False, True, True, True, False]
    # the joint text codes make the external query equal to the examples' "red shoes" / "RED   shoes"
    assert guard.query_key[6] == guard.query_key[0] == guard.query_key[4]
    assert guard.pair_key[6] == guard.pair_key[4] != guard.pair_key[0]
