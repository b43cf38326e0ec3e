"""One shard of the teacher store: embed its unique prompts in batches and write it atomically.

The local embed job and the Ray actors (``ray_engine``) both call :func:`write_embedded_shard`, which
is why their stores are the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.ipc as ipc

from llm2ctr.teacher import reduction as R
from llm2ctr.teacher.config import TeacherConfig
from llm2ctr.teacher.store import write_shard


def shard_meta(path: Path) -> dict[str, Any]:
    """The llm2ctr metadata a finished shard carries (rows, unique prompts, tokens, fidelity sums)."""
    with open(path, "rb") as fh:
        meta = ipc.open_file(fh).schema.metadata or {}
    return json.loads(meta.get(b"llm2ctr", b"{}"))


def batch_step(cfg: TeacherConfig) -> int:
    """Prompts per backend call: the whole shard for vLLM (it schedules), else batch_size (x concurrency)."""
    if cfg.backend == "vllm":
        return cfg.shard_size
    return cfg.batch_size * max(1, cfg.concurrency if cfg.backend == "openai" else 1)


def write_embedded_shard(path: Path, backend, payload: dict[str, Any], red: dict[str, Any] | None, store_dtype: str,
                         step: int, on_batch=None) -> dict[str, Any]:
    """Embed one shard's prompts in batches of ``step`` and write it atomically (the same bytes whichever
    engine runs it); ``on_batch(rows, tokens)`` after each batch. Returns the shard's metadata."""
    prompts, counts = list(payload["prompts"]), np.asarray(payload["counts"], dtype=np.int64)
    chunks, tokens = [], 0
    for a in range(0, len(prompts), step):
        b = min(a + step, len(prompts))
        before = backend.tokens_seen
        chunks.append(backend.embed(prompts[a:b]))
        tokens += backend.tokens_seen - before
        if on_batch is not None:
            on_batch(int(counts[a:b].sum()), backend.tokens_seen - before)
    vecs = np.concatenate(chunks)
    meta = {"rows": int(counts.sum()), "unique": len(prompts), "tokens": int(tokens),
            "fid_sum": 0.0, "fid_min": 1.0, "fid_n": 0}
    stored = vecs
    if red is not None and red["method"] != "none":
        stored = R.apply_reduction(vecs, red).astype(np.float16)
        fid = R.fidelity(vecs, stored, red)
        meta.update(fid_sum=float(fid.sum()), fid_min=float(fid.min()), fid_n=len(fid))
    write_shard(path, list(payload["keys"]), np.repeat(stored, counts, axis=0), store_dtype, meta)
    return meta
