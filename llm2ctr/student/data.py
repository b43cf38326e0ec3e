"""Training data for the student: pairs joined with teacher vectors by pair_id, tokenized once.

Everything is held as padded numpy arrays so that a batch is one fancy-index away and the data
order is a pure function of (seed, epoch), which is what makes resume exact.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from tqdm.auto import tqdm

from llm2ctr.artifacts import ArtifactError
from llm2ctr.student.losses import IGNORE_LABEL
from llm2ctr.student.teacher_head import N_CLASSES
from llm2ctr.student.tokenization import encode_pairs

log = logging.getLogger(__name__)


@dataclass
class PairArrays:
    """Tokenized pairs with labels (0..3, -100 = unlabelled) and teacher targets."""

    pair_ids: np.ndarray  # object [n]
    queries: np.ndarray  # object [n]
    items: np.ndarray  # object [n] item texts
    splits: np.ndarray  # object [n]
    input_ids: np.ndarray  # int32 [n, L], right padded
    token_type_ids: np.ndarray  # int8 [n, L]
    attention_mask: np.ndarray  # int8 [n, L]
    labels: np.ndarray  # int64 [n]
    teacher: np.ndarray  # float32 [n, D] (zeros where missing)
    has_teacher: np.ndarray  # bool [n]
    soft: np.ndarray  # float32 [n, 4] teacher-head probabilities for the kd term (zeros until set)

    def __len__(self) -> int:
        return len(self.pair_ids)

    def subset(self, mask_or_idx: np.ndarray) -> PairArrays:
        return PairArrays(**{k: getattr(self, k)[mask_or_idx] for k in self.__dataclass_fields__})

    def batch(self, idx: np.ndarray, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """Tensors for rows ``idx``, trimmed to the longest real sequence among them."""
        am = self.attention_mask[idx]
        width = max(int(am.sum(1).max()), 1)
        return {
            "input_ids": torch.from_numpy(self.input_ids[idx, :width].astype(np.int64)).to(device),
            "token_type_ids": torch.from_numpy(self.token_type_ids[idx, :width].astype(np.int64)).to(device),
            "attention_mask": torch.from_numpy(am[:, :width].astype(np.int64)).to(device),
            "labels": torch.from_numpy(self.labels[idx]).to(device),
            "teacher": torch.from_numpy(self.teacher[idx]).to(device),
            "has_teacher": torch.from_numpy(self.has_teacher[idx]).to(device),
            "soft": torch.from_numpy(self.soft[idx]).to(device),
        }


def load_teacher_stores(dirs: Sequence[str | Path]) -> tuple[list[str], np.ndarray]:
    """Union of teacher stores (keys = pair_ids); the first store wins on a repeated key."""
    from llm2ctr.teacher.artifact import load_teacher_embeddings

    all_keys: list[str] = []
    parts: list[np.ndarray] = []
    dim = None
    for d in dirs:
        keys, vecs = load_teacher_embeddings(d)
        vecs = np.asarray(vecs, dtype=np.float32)
        if dim is not None and vecs.shape[1] != dim:
            raise ArtifactError(
                f"{d}: teacher vectors have dim {vecs.shape[1]} but {dirs[0]} has {dim}; "
                "stores joined for one student must come from the same teacher"
            )
        dim = vecs.shape[1]
        all_keys.extend(keys)
        parts.append(vecs)
    if not parts:
        return [], np.zeros((0, 0), dtype=np.float32)
    keep = ~pd.Index(all_keys).duplicated(keep="first")
    return [k for k, m in zip(all_keys, keep, strict=True) if m], np.concatenate(parts)[keep]


def join_teacher(pair_ids: Sequence[str], keys: Sequence[str], vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Teacher vector per pair (zeros where absent) and the presence mask; hash join, O(n)."""
    pos = pd.Index(keys).get_indexer(pd.Index(pair_ids)) if len(keys) else np.full(len(pair_ids), -1)
    has = pos >= 0
    dim = vectors.shape[1] if vectors.ndim == 2 and len(keys) else 0
    out = np.zeros((len(pair_ids), dim), dtype=np.float32)
    if dim:
        out[has] = vectors[pos[has]]
    return out, has


def labels_from_rsl(rsl: pa.ChunkedArray | pa.Array, where: str) -> np.ndarray:
    """rsl 1..4 -> class 0..3; null -> IGNORE_LABEL. Out-of-range values are an error naming the row."""
    vals = pd.array(rsl.to_pandas(), dtype="Int64")
    bad = (~vals.isna()) & ((vals < 1) | (vals > 4))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy(dtype=bool, na_value=False))[0])
        raise ArtifactError(f"{where}: row {row}, column 'rsl' = {vals[row]}; expected 1..4 or null")
    return (vals - 1).fillna(IGNORE_LABEL).to_numpy(dtype=np.int64)


def tokenize_table(
    tokenizer,
    table: pa.Table,
    max_length: int,
    keys: Sequence[str],
    vectors: np.ndarray,
    where: str,
    chunk: int = 8192,
) -> PairArrays:
    """Tokenize every pair of ``table`` (pairs schema) and attach labels and teacher vectors."""
    queries = np.asarray(table.column("query").to_pylist(), dtype=object)
    items = np.asarray(table.column("item_text").to_pylist(), dtype=object)
    n = len(queries)
    ids = np.zeros((n, max_length), dtype=np.int32)
    tt = np.zeros((n, max_length), dtype=np.int8)
    am = np.zeros((n, max_length), dtype=np.int8)
    for s in tqdm(range(0, n, chunk), desc="tokenize", disable=n <= chunk, leave=False):
        enc = encode_pairs(tokenizer, queries[s : s + chunk].tolist(), items[s : s + chunk].tolist(), max_length)
        w = enc["input_ids"].shape[1]
        ids[s : s + chunk, :w] = enc["input_ids"].numpy()
        tt[s : s + chunk, :w] = enc["token_type_ids"].numpy()
        am[s : s + chunk, :w] = enc["attention_mask"].numpy()
    pair_ids = np.asarray(table.column("pair_id").to_pylist(), dtype=object)
    teacher, has = join_teacher(pair_ids.tolist(), keys, vectors)
    return PairArrays(
        pair_ids=pair_ids,
        queries=queries,
        items=items,
        splits=np.asarray(table.column("split").to_pylist(), dtype=object),
        input_ids=ids,
        token_type_ids=tt,
        attention_mask=am,
        labels=labels_from_rsl(table.column("rsl"), where),
        teacher=teacher,
        has_teacher=has,
        soft=np.zeros((n, N_CLASSES), dtype=np.float32),
    )


def concat(parts: Sequence[PairArrays]) -> PairArrays:
    """Row-wise concatenation (teacher dims must agree or be empty)."""
    dims = {p.teacher.shape[1] for p in parts if len(p)}
    dim = max(dims) if dims else 0
    fixed = []
    for p in parts:
        if p.teacher.shape[1] != dim:
            p = PairArrays(**{**p.__dict__, "teacher": np.zeros((len(p), dim), np.float32)})
        fixed.append(p)
    return PairArrays(**{k: np.concatenate([getattr(p, k) for p in fixed]) for k in PairArrays.__dataclass_fields__})
