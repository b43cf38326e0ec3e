"""faiss indexes over normalised embeddings: exact flat, HNSW or IVF-PQ, and their recall vs exact.

Exact search is cheap up to a few hundred thousand vectors (a 100k x 384 flat index builds in
0.1 s here), so ``auto`` only goes approximate above ``exact_threshold``: HNSW while the vectors
fit in memory uncompressed, IVF-PQ (8 dims per byte) beyond ``ivfpq_threshold``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np
from tqdm.auto import tqdm

from llm2ctr.errors import UserError

if TYPE_CHECKING:
    from llm2ctr.rag.config import RagConfig

log = logging.getLogger(__name__)

INDEX_TYPES = ("flat", "hnsw", "ivfpq")
METRIC = "inner_product"  # on L2-normalised vectors = cosine similarity
ADD_CHUNK = 65_536


@dataclass
class IndexParams:
    """The knobs of one index type (from :class:`RagConfig`), recorded in the manifest."""

    index_type: str
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 128
    ivf_nlist: int = 0
    ivf_nprobe: int = 32
    pq_m: int = 0
    pq_nbits: int = 8
    ivfpq_refine: str = "sq8"
    refine_k_factor: float = 16.0
    train_sample: int = 200_000
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: RagConfig, index_type: str) -> IndexParams:
        return cls(
            index_type=index_type,
            hnsw_m=cfg.hnsw_m,
            hnsw_ef_construction=cfg.hnsw_ef_construction,
            hnsw_ef_search=cfg.hnsw_ef_search,
            ivf_nlist=cfg.ivf_nlist,
            ivf_nprobe=cfg.ivf_nprobe,
            pq_m=cfg.pq_m,
            pq_nbits=cfg.pq_nbits,
            ivfpq_refine=cfg.ivfpq_refine,
            refine_k_factor=cfg.refine_k_factor,
            train_sample=cfg.train_sample,
        )


def choose_index_type(n: int, requested: str, exact_threshold: int, ivfpq_threshold: int) -> str:
    """Resolve ``auto`` by collection size; validate an explicit choice."""
    if requested == "auto":
        if n < exact_threshold:
            return "flat"
        return "hnsw" if n < ivfpq_threshold else "ivfpq"
    if requested not in INDEX_TYPES:
        raise UserError(f"rag.index_type={requested!r}: expected one of auto, {', '.join(INDEX_TYPES)}")
    return requested


def _pq_m(dim: int, wanted: int) -> int:
    """Largest divisor of ``dim`` not above ``wanted`` (default dim/8): PQ needs dim % m == 0."""
    target = wanted if wanted > 0 else max(1, dim // 8)
    return max(m for m in range(1, min(target, dim) + 1) if dim % m == 0)


def _ivf_nlist(n: int, wanted: int) -> int:
    nlist = wanted if wanted > 0 else int(4 * math.sqrt(n))
    return int(max(1, min(nlist, n // 39)))  # faiss wants >= 39 training points per list


_REFINE = {"none": "", "sq8": ",Refine(SQ8)", "flat": ",RFlat"}


def _ivfpq(dim: int, nlist: int, m: int, nbits: int, params: IndexParams, seed: int) -> faiss.Index:
    """IVF-PQ, optionally wrapped in a re-ranking stage, built by index_factory (faiss owns the parts)."""
    if params.ivfpq_refine not in _REFINE:
        raise UserError(f"rag.ivfpq_refine={params.ivfpq_refine!r}: expected none, sq8 or flat")
    spec = f"IVF{nlist},PQ{m}x{nbits}{_REFINE[params.ivfpq_refine]}"
    index = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.extract_index_ivf(index)
    ivf.nprobe = min(params.ivf_nprobe, nlist)
    ivf.cp.seed = seed
    pq_ivf = faiss.downcast_index(ivf)
    pq_ivf.pq.cp.seed = seed
    pq_ivf.do_polysemous_training = False  # the factory turns it on; slow, and unused by our search
    if params.ivfpq_refine != "none":
        faiss.downcast_index(index).k_factor = params.refine_k_factor
    params.extra = {"factory": spec, "nlist": nlist, "pq_m": m, "pq_nbits": nbits, "nprobe": ivf.nprobe,
                    "refine": params.ivfpq_refine, "refine_k_factor": params.refine_k_factor}
    return index


def build_index(vectors: np.ndarray, params: IndexParams, seed: int = 0, progress: bool = True) -> faiss.Index:
    """Build (train + add) an inner-product index over float32 ``vectors`` [n, d]."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"build_index: expected a 2-d array of vectors, got shape {x.shape}")
    n, dim = x.shape
    kind = params.index_type
    if kind == "flat":
        index: faiss.Index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params.hnsw_ef_construction
        index.hnsw.efSearch = params.hnsw_ef_search
    elif kind == "ivfpq":
        if n < 2:
            raise UserError(f"an IVF-PQ index needs at least 2 vectors to train, got {n}; use rag.index_type=flat")
        nlist = _ivf_nlist(n, params.ivf_nlist)
        m = _pq_m(dim, params.pq_m)
        nbits = int(min(params.pq_nbits, max(1, math.floor(math.log2(n)))))  # 2**nbits centroids <= n
        index = _ivfpq(dim, nlist, m, nbits, params, seed)
        rng = np.random.default_rng(seed)
        sample = x if n <= params.train_sample else x[np.sort(rng.choice(n, params.train_sample, replace=False))]
        index.train(sample)
    else:
        raise UserError(f"unknown index type {kind!r}; expected one of {', '.join(INDEX_TYPES)}")
    bar = tqdm(total=n, desc=f"faiss add ({kind})", unit="vec", disable=not progress or n < ADD_CHUNK)
    for start in range(0, n, ADD_CHUNK):
        index.add(x[start : start + ADD_CHUNK])
        bar.update(min(ADD_CHUNK, n - start))
    bar.close()
    return index


def set_search_params(index: faiss.Index, ef_search: int, nprobe: int, fetch: int = 0) -> None:
    """Search-time knobs (not all survive write/read): HNSW efSearch must cover the fetch size."""
    if isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = max(ef_search, fetch)
    ivf = faiss.try_extract_index_ivf(index) if not isinstance(index, faiss.IndexFlat) else None
    if ivf is not None:
        ivf.nprobe = min(nprobe, ivf.nlist)


def search(index: faiss.Index, queries: np.ndarray, k: int, batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Batched top-k search; ids are -1 (and sims -inf) where the index has fewer than k hits."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    k = max(1, min(k, max(index.ntotal, 1)))
    sims = np.empty((len(q), k), dtype=np.float32)
    ids = np.empty((len(q), k), dtype=np.int64)
    for start in range(0, len(q), batch):
        s, i = index.search(q[start : start + batch], k)
        sims[start : start + batch], ids[start : start + batch] = s, i
    sims[ids < 0] = -np.inf
    return sims, ids


def recall_at_k(
    approx_ids: np.ndarray, exact_sims: np.ndarray, queries: np.ndarray, vectors: np.ndarray, eps: float = 1e-5
) -> float:
    """Share of the approximate top-k that is truly in the top-k, ties included.

    A hit is a returned vector whose exact similarity reaches the k-th exact similarity, so
    duplicate vectors (identical pair texts) that exact search happened to order differently do
    not count as misses.
    """
    if approx_ids.size == 0:
        return 1.0
    k = exact_sims.shape[1]
    kth = exact_sims[:, -1:]
    safe = np.where(approx_ids >= 0, approx_ids, 0)
    true_sims = np.einsum("qkd,qd->qk", vectors[safe], queries)
    hits = (true_sims >= kth - eps) & (approx_ids >= 0)
    wanted = np.isfinite(exact_sims).sum(axis=1)
    return float(np.minimum(hits.sum(axis=1), wanted).sum() / max(int(wanted.sum()), 1)) if k else 1.0


def measure_recall(index: faiss.Index, vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> float:
    """recall@k of ``index`` against exact inner-product search over the same ``vectors``."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    exact = faiss.IndexFlatIP(x.shape[1])
    exact.add(x)
    e_sims, _ = search(exact, q, k)
    _, a = search(index, q, k)
    return recall_at_k(a, e_sims, q, x)


def write_index(index: faiss.Index, path: str | Path) -> None:
    faiss.write_index(index, str(path))


def read_index(path: str | Path) -> faiss.Index:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: faiss index file is missing; re-run `llm2ctr rag index`")
    try:
        return faiss.read_index(str(path))
    except RuntimeError as exc:
        raise UserError(f"{path}: not a readable faiss index ({str(exc).splitlines()[0]}); "
                        "re-run `llm2ctr rag index`") from None
