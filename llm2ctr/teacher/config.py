"""Teacher stage configuration."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TeacherConfig:
    """Teacher backend and embedding job. Owned by the teacher stage; extend freely."""

    backend: str = "hf"  # hf | vllm | openai
    model: str = "minilm"  # "minilm" = packaged all-MiniLM-L6-v2; else a hub id or local path
    pooling: str = "mean"  # mean | last
    normalize: bool = True
    batch_size: int = 64
    shard_size: int = 8192
    use_rag: bool = True
