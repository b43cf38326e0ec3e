"""Feature building: lexical match features, ragged padding, hashing, streamed batch order."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from llm2ctr.ctr.features import (
    FeatureReader,
    _to_arrow,
    hash_values,
    pad_from_offsets,
)
from llm2ctr.data.lexical import LEXICAL_NAMES, lexical_features


def test_lexical_overlap_and_bm25_rank_matching_items_first():
    q = ["red running shoes"] * 3
    items = ["red running shoes for men", "running socks", "blue kettle"]
    f = lexical_features(q, items)
    assert f.shape == (3, len(LEXICAL_NAMES))
    col = {n: f[:, i] for i, n in enumerate(LEXICAL_NAMES)}
    np.testing.assert_allclose(col["overlap_count"], [3, 1, 0])
    np.testing.assert_allclose(col["overlap_query_share"], [1.0, 1 / 3, 0.0], rtol=1e-6)
    np.testing.assert_allclose(col["jaccard"], [3 / 5, 1 / 4, 0.0], rtol=1e-6)
    assert col["bm25"][0] > col["bm25"][1] > col["bm25"][2] == 0
    assert col["tfidf_cosine"][0] > col["tfidf_cosine"][1] > col["tfidf_cosine"][2] == 0


def test_pad_from_offsets_keeps_tail_or_head_and_fills():
    offsets = np.array([0, 3, 3, 8])
    values = np.arange(8)
    rows = np.array([0, 1, 2, -1])
    tail = pad_from_offsets(offsets, values, rows, 4, -1, tail=True)
    np.testing.assert_array_equal(tail, [[0, 1, 2, -1], [-1] * 4, [4, 5, 6, 7], [-1] * 4])
    head = pad_from_offsets(offsets, values, rows, 2, -1, tail=False)
    np.testing.assert_array_equal(head, [[0, 1], [-1, -1], [3, 4], [-1, -1]])


def test_hash_is_stable_and_field_scoped():
    a = hash_values("user_id", np.array(["u1", "u2", "u1"]), 1000)
    assert a[0] == a[2] and a.dtype == np.int64 and (a < 1000).all()
    np.testing.assert_array_equal(a, hash_values("user_id", np.array(["u1", "u2", "u1"]), 1000))
    assert hash_values("item_id", np.array(["u1"]), 10**9)[0] != hash_values("user_id", np.array(["u1"]), 10**9)[0]


@pytest.fixture()
def feature_file(tmp_path):
    import pyarrow.ipc as ipc

    path = tmp_path / "f.arrow"
    with ipc.new_file(str(path), _to_arrow({"row": np.arange(5), "x": np.zeros((5, 2))}).schema) as w:
        for s in range(0, 23, 5):
            n = min(5, 23 - s)
            w.write_batch(_to_arrow({"row": np.arange(s, s + n), "x": np.tile(np.arange(s, s + n)[:, None], 2).astype(np.float64)}))
    return path


def test_reader_order_is_deterministic_complete_and_resumable(feature_file):
    r = FeatureReader(feature_file)
    assert r.num_rows == 23 and r.steps_per_epoch(2) == 14
    full = [b["row"] for b in r.batches(2, shuffle=True, seed=1, epoch=0)]
    assert sorted(torch.cat(full).tolist()) == list(range(23))
    assert torch.cat(full).tolist() != list(range(23))
    again = [b["row"] for b in r.batches(2, shuffle=True, seed=1, epoch=0, start_step=7)]
    assert [t.tolist() for t in again] == [t.tolist() for t in full[7:]]
    other = torch.cat([b["row"] for b in r.batches(2, shuffle=True, seed=1, epoch=1)])
    assert other.tolist() != torch.cat(full).tolist()
    b = next(r.batches(4))
    assert b["x"].shape == (4, 2) and torch.equal(b["x"][:, 0], b["row"].double())
    np.testing.assert_array_equal(r.column("row"), np.arange(23))
    assert pa.types.is_int64(pa.array(r.column("row")).type)
