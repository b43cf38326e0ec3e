"""faiss index building: exact vs approximate recall, auto choice, tie-aware recall, file round trip."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from llm2ctr.cli.common import UserError
from llm2ctr.rag.index import (
    IndexParams,
    build_index,
    choose_index_type,
    measure_recall,
    read_index,
    recall_at_k,
    search,
    set_search_params,
    write_index,
)


def clustered(n: int, dim: int, clusters: int = 50, noise: float = 0.35, seed: int = 0) -> np.ndarray:
    """Unit vectors around random centres: structured like text embeddings, unlike pure noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    x = centres[rng.integers(clusters, size=n)] + noise * rng.standard_normal((n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def _all() -> np.ndarray:
    return clustered(4300, 64)


@pytest.fixture(scope="module")
def vectors(_all: np.ndarray) -> np.ndarray:
    return _all[:4000]


@pytest.fixture(scope="module")
def queries(_all: np.ndarray) -> np.ndarray:
    """Unseen queries from the same distribution as the indexed vectors."""
    return _all[4000:]


def test_flat_is_exact_against_numpy(vectors: np.ndarray):
    index = build_index(vectors, IndexParams("flat"), progress=False)
    q = vectors[:50]
    sims, ids = search(index, q, 10)
    ref = np.argsort(-(q @ vectors.T), axis=1, kind="stable")[:, :10]
    ref_sims = np.take_along_axis(q @ vectors.T, ref, axis=1)
    np.testing.assert_allclose(sims, ref_sims, atol=1e-5)
    assert recall_at_k(ids, ref_sims, q, vectors) == 1.0
    assert measure_recall(index, vectors, q, 10) == 1.0


@pytest.mark.parametrize(
    ("kind", "refine", "floor"), [("hnsw", "none", 0.95), ("ivfpq", "none", 0.5), ("ivfpq", "sq8", 0.9)]
)
def test_approximate_recall_is_sane(vectors: np.ndarray, queries: np.ndarray, kind: str, refine: str, floor: float):
    params = IndexParams(kind, ivf_nprobe=16, pq_m=16, ivfpq_refine=refine)
    index = build_index(vectors, params, progress=False)
    assert index.ntotal == len(vectors)
    q = queries
    r = measure_recall(index, vectors, q, 10)
    assert floor <= r <= 1.0, f"{kind} recall@10 {r:.3f} below {floor}"
    if kind == "ivfpq":
        assert params.extra["pq_m"] == 16 and params.extra["nlist"] <= len(vectors) // 39
        assert params.extra["refine"] == refine
        # fewer probes must not find more: recall is monotone in nprobe
        set_search_params(index, 0, nprobe=1)
        assert measure_recall(index, vectors, q, 10) <= r


def test_ivfpq_small_collection_clamps_parameters():
    x = clustered(100, 24, clusters=5)
    params = IndexParams("ivfpq", pq_m=0, ivfpq_refine="flat")
    index = build_index(x, params, progress=False)
    assert index.ntotal == 100
    assert params.extra["nlist"] == 2 and params.extra["pq_m"] == 3 and params.extra["pq_nbits"] == 6
    assert isinstance(index, faiss.IndexRefineFlat)
    with pytest.raises(UserError, match="expected none, sq8 or flat"):
        build_index(x, IndexParams("ivfpq", ivfpq_refine="pq"), progress=False)


def test_recall_counts_ties_as_hits():
    """Two identical vectors: returning either one at rank k is correct."""
    x = np.eye(4, dtype=np.float32)
    x = np.vstack([x, x[2:3]])  # row 4 duplicates row 2
    q = x[2:3]
    exact_sims = np.array([[1.0, 1.0]], dtype=np.float32)
    assert recall_at_k(np.array([[4, 2]]), exact_sims, q, x) == 1.0
    assert recall_at_k(np.array([[4, 0]]), exact_sims, q, x) == 0.5
    assert recall_at_k(np.array([[4, -1]]), exact_sims, q, x) == 0.5


def test_choose_index_type():
    assert choose_index_type(10, "auto", 100, 1000) == "flat"
    assert choose_index_type(100, "auto", 100, 1000) == "hnsw"
    assert choose_index_type(5000, "auto", 100, 1000) == "ivfpq"
    assert choose_index_type(10, "hnsw", 100, 1000) == "hnsw"
    with pytest.raises(UserError, match="expected one of auto, flat, hnsw, ivfpq"):
        choose_index_type(10, "annoy", 100, 1000)


def test_write_read_roundtrip(tmp_path: Path, vectors: np.ndarray):
    index = build_index(vectors[:500], IndexParams("hnsw", hnsw_m=8), progress=False)
    write_index(index, tmp_path / "i.faiss")
    again = read_index(tmp_path / "i.faiss")
    assert isinstance(again, faiss.IndexHNSW)
    np.testing.assert_array_equal(search(index, vectors[:20], 5)[1], search(again, vectors[:20], 5)[1])
    (tmp_path / "bad.faiss").write_bytes(b"not an index")
    with pytest.raises(UserError, match="not a readable faiss index"):
        read_index(tmp_path / "bad.faiss")
    with pytest.raises(UserError, match="missing"):
        read_index(tmp_path / "none.faiss")


def test_search_pads_when_index_is_small():
    x = clustered(3, 8)
    sims, ids = search(build_index(x, IndexParams("flat"), progress=False), x, 3)
    assert ids.shape == (3, 3) and (ids >= 0).all()
