"""Turn events + history + pairs into fixed-width feature rows, written as memory-mapped Arrow.

Per event: hashed sparse ids (``f_*`` columns plus user, item, category, query, position),
standardised numeric ``n_*`` columns (plus log history length), the event's pair index and the
padded history / cross-user sequences as pair indices (joined on request_id, pair_ids mapped to
rows of the pair table). Text and lexical features live once per *pair* in
:class:`PairFeatures` and are looked up by index inside the model, so a feature row stays small.

Rows are written as Arrow record batches of ``shard_rows`` rows; :class:`FeatureReader` maps the
file and serves minibatches, so memory is bounded by one record batch whatever the log size.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
import torch

from llm2ctr.artifacts import atomic_write_bytes
from llm2ctr.data.lexical import lexical_features
from llm2ctr.data.schema import NUMERIC_PREFIX, SPARSE_PREFIX
from llm2ctr.errors import InputError

log = logging.getLogger(__name__)

BASE_SPARSE = ("user_id", "item_id", "category", "query")
_HASH_KEY = "llm2ctr-ranker-1"  # 16 bytes: pandas' siphash key; fixed so ids are stable across runs


def hash_values(field_name: str, values: np.ndarray | pd.Series, buckets: int) -> np.ndarray:
    """Stable int64 bucket ids for ``field=value`` strings (vectorised siphash)."""
    s = pd.Series(values).astype(str)
    keyed = (field_name + "=" + s).to_numpy(dtype=object)
    h = pd.util.hash_array(keyed, hash_key=_HASH_KEY, categorize=True)
    return (h % np.uint64(buckets)).astype(np.int64)


def user_codes(user_ids: np.ndarray | pd.Series) -> np.ndarray:
    """Stable int64 code of a user id (GAUC grouping and joins with ground truth)."""
    s = pd.Series(user_ids).astype(str).to_numpy(dtype=object)
    return pd.util.hash_array(s, hash_key=_HASH_KEY, categorize=True).view(np.int64)


@dataclass
class FeatureSpec:
    """Which columns feed the ranker and their train-set statistics (saved with each model)."""

    sparse_fields: list[str] = field(default_factory=list)
    numeric_fields: list[str] = field(default_factory=list)
    numeric_mean: list[float] = field(default_factory=list)
    numeric_std: list[float] = field(default_factory=list)
    buckets: int = 200_003
    hist_len: int = 20
    cross_len: int = 20

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        return cls(**json.loads(text))


@dataclass
class PairFeatures:
    """Everything known per pair: index, texts, query index, item code and lexical features."""

    pair_ids: pd.Index
    queries: list[str]
    item_texts: list[str]
    query_index: np.ndarray  # [P] int64 row of the pair's query in ``unique_queries``
    unique_queries: list[str]
    item_code: np.ndarray  # [P] int64 hashed item id (DIN's id embedding)
    lexical: np.ndarray  # [P, n_lex] float32, standardised
    rsl: np.ndarray  # [P] int64, 0 = unlabelled
    category: np.ndarray  # [P] int64 code of the pair's category
    item_ids: list[str] = field(default_factory=list)  # [P] the pair's item id

    @property
    def n(self) -> int:
        return len(self.pair_ids)


def build_pair_features(pairs: pa.Table, buckets: int, k1: float = 1.2, b: float = 0.75) -> PairFeatures:
    """Index the pairs table and compute lexical features once per pair."""
    pair_ids = pd.Index(pairs.column("pair_id").to_pylist())
    if not pair_ids.is_unique:
        dup = pair_ids[pair_ids.duplicated()][0]
        raise InputError(f"pairs: column pair_id has duplicate value {dup!r}; pair ids must be unique")
    queries = pairs.column("query").to_pylist()
    items = pairs.column("item_text").to_pylist()
    uq, q_idx = np.unique(np.asarray(queries, dtype=object), return_inverse=True)
    lex = lexical_features(queries, items, k1=k1, b=b)
    mu, sd = lex.mean(0), lex.std(0) + 1e-6
    rsl = pairs.column("rsl").to_numpy(zero_copy_only=False)
    rsl = np.nan_to_num(rsl.astype(np.float64), nan=0.0).astype(np.int64)
    return PairFeatures(
        pair_ids=pair_ids,
        queries=queries,
        item_texts=items,
        query_index=q_idx.astype(np.int64),
        unique_queries=[str(q) for q in uq],
        item_code=hash_values("item_id", pairs.column("item_id").to_numpy(zero_copy_only=False), buckets),
        lexical=((lex - mu) / sd).astype(np.float32),
        rsl=rsl,
        category=pd.factorize(pd.Series(pairs.column("category").to_pylist(), dtype=object), sort=True)[0]
        .astype(np.int64),
        item_ids=[str(i) for i in pairs.column("item_id").to_pylist()],
    )


def make_spec(events: pa.Table, cfg_buckets: int, hist_len: int, cross_len: int, position: bool) -> FeatureSpec:
    """Pick the sparse and numeric columns of ``events`` and fit numeric statistics on it."""
    names = events.column_names
    sparse = list(BASE_SPARSE) + (["position"] if position else [])
    sparse += sorted(c for c in names if c.startswith(SPARSE_PREFIX))
    numeric = sorted(c for c in names if c.startswith(NUMERIC_PREFIX))
    means, stds = [], []
    for c in numeric:
        col = events.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
        col = col[np.isfinite(col)]
        means.append(float(col.mean()) if col.size else 0.0)
        stds.append(float(col.std()) + 1e-6 if col.size else 1.0)
    return FeatureSpec(sparse, numeric, means, stds, cfg_buckets, hist_len, cross_len)


def pad_from_offsets(
    offsets: np.ndarray, values: np.ndarray, rows: np.ndarray, width: int, fill, tail: bool
) -> np.ndarray:
    """Vectorised padding of ragged lists given Arrow-style offsets; rows < 0 give all ``fill``."""
    ok = rows >= 0
    r = np.where(ok, rows, 0)
    start, end = offsets[r], offsets[r + 1]
    length = np.where(ok, np.minimum(end - start, width), 0)
    first = np.where(tail, end - length, start)
    idx = first[:, None] + np.arange(width)[None, :]
    valid = np.arange(width)[None, :] < length[:, None]
    if values.size == 0:
        return np.full((len(rows), width), fill)
    out = values[np.clip(idx, 0, values.size - 1)]
    return np.where(valid, out, fill)


class HistoryIndex:
    """The history table with its pair-id lists already mapped to pair rows (done once)."""

    def __init__(self, history: pa.Table, pairs: PairFeatures, where: str = "history") -> None:
        self.request_index = pd.Index(history.column("request_id").to_pylist())
        self.cols: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for prefix in ("hist", "cross"):
            ids = history.column(f"{prefix}_pair_ids").combine_chunks()
            flat = ids.values.to_numpy(zero_copy_only=False)
            pidx = pairs.pair_ids.get_indexer(flat)
            bad = int((pidx < 0).sum())
            if bad:
                first = flat[np.flatnonzero(pidx < 0)[0]]
                log.warning("%s: %d %s_pair_ids not in pairs (first %r); treated as padding", where, bad, prefix, first)
            off = ids.offsets.to_numpy()
            self.cols[f"{prefix}_pidx"] = (off, pidx.astype(np.int64))
            for part in ("clicks", "rsl") + (("sim",) if prefix == "cross" else ()):
                col = history.column(f"{prefix}_{part}").combine_chunks()
                vals = col.values.to_numpy(zero_copy_only=False)
                self.cols[f"{prefix}_{part}"] = (col.offsets.to_numpy(), np.nan_to_num(vals.astype(np.float64)))
        self.n_hist = history.column("n_hist").to_numpy(zero_copy_only=False).astype(np.int64)

    def rows_for(self, request_ids: list[str]) -> np.ndarray:
        return self.request_index.get_indexer(request_ids)


def event_rows(
    events: pa.Table, spec: FeatureSpec, pairs: PairFeatures, hist: HistoryIndex, where: str
) -> dict[str, np.ndarray]:
    """Fixed-width numpy feature arrays for a (chunk of an) events table."""
    n = events.num_rows
    pid = events.column("pair_id").to_pylist()
    pair_idx = pairs.pair_ids.get_indexer(pid)
    if (pair_idx < 0).any():
        i = int(np.flatnonzero(pair_idx < 0)[0])
        raise InputError(f"{where}: row {i} column pair_id value {pid[i]!r} is not in the pairs table")
    sparse = np.empty((n, len(spec.sparse_fields)), np.int64)
    for j, f in enumerate(spec.sparse_fields):
        sparse[:, j] = hash_values(f, events.column(f).to_numpy(zero_copy_only=False), spec.buckets)
    hrow = hist.rows_for(events.column("request_id").to_pylist())
    missing = int((hrow < 0).sum())
    if missing:
        log.warning("%s: %d of %d rows have no history row (request_id); they get empty sequences", where, missing, n)
    n_hist = np.where(hrow >= 0, hist.n_hist[np.maximum(hrow, 0)], 0)
    numeric = np.empty((n, len(spec.numeric_fields) + 1), np.float32)
    for j, f in enumerate(spec.numeric_fields):
        v = events.column(f).to_numpy(zero_copy_only=False).astype(np.float64)
        numeric[:, j] = np.nan_to_num((v - spec.numeric_mean[j]) / spec.numeric_std[j])
    numeric[:, -1] = np.log1p(n_hist) - 1.0
    out: dict[str, np.ndarray] = {
        "sparse": sparse,
        "numeric": numeric,
        "pair_idx": pair_idx.astype(np.int64),
        "n_hist": n_hist.astype(np.int64),
        "label": events.column("click").to_numpy(zero_copy_only=False).astype(np.float32),
        "rsl": np.nan_to_num(events.column("rsl").to_numpy(zero_copy_only=False).astype(np.float64)).astype(np.int64),
        "user_code": user_codes(events.column("user_id").to_numpy(zero_copy_only=False)),
        "position_raw": np.nan_to_num(events.column("position").to_numpy(zero_copy_only=False).astype(np.float64))
        .astype(np.int64),
    }
    for prefix, width, tail in (("hist", spec.hist_len, True), ("cross", spec.cross_len, False)):
        off, vals = hist.cols[f"{prefix}_pidx"]
        out[f"{prefix}_pidx"] = pad_from_offsets(off, vals, hrow, width, np.int64(-1), tail)
        for part in ("clicks", "rsl") + (("sim",) if prefix == "cross" else ()):
            off, vals = hist.cols[f"{prefix}_{part}"]
            dtype = np.float32 if part == "sim" else np.int64
            out[f"{prefix}_{part}"] = pad_from_offsets(off, vals, hrow, width, 0.0, tail).astype(dtype)
    return out


def _to_arrow(arrays: dict[str, np.ndarray]) -> pa.RecordBatch:
    cols, names = [], []
    for k, v in arrays.items():
        if v.ndim == 1:
            cols.append(pa.array(v))
        else:
            cols.append(pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(v).ravel()), v.shape[1]))
        names.append(k)
    return pa.RecordBatch.from_arrays(cols, names=names)


def write_features(
    path: str | Path,
    events: pa.Table,
    spec: FeatureSpec,
    pairs: PairFeatures,
    hist: HistoryIndex,
    shard_rows: int,
    order: np.ndarray | None = None,
    where: str = "events",
    extra: dict[str, np.ndarray] | None = None,
) -> int:
    """Write feature rows (in ``order``, default as-is) as one Arrow IPC file, atomically.

    ``extra`` holds per-row columns aligned with ``events`` (ground truth, request codes), copied
    beside the features for evaluation; models never read them unless a spec asks (oracle controls).
    """
    path = Path(path)
    order = np.arange(events.num_rows) if order is None else order
    sink = pa.BufferOutputStream()
    writer = None
    for s in range(0, max(len(order), 1), shard_rows):
        idx = order[s : s + shard_rows]
        chunk = events.take(pa.array(idx, type=pa.int64()))
        rows = event_rows(chunk, spec, pairs, hist, where)
        rows["row"] = idx.astype(np.int64)
        for name, values in (extra or {}).items():
            rows[name] = values[idx]
        batch = _to_arrow(rows)
        if writer is None:
            writer = ipc.new_file(sink, batch.schema)
        writer.write_batch(batch)
    if writer is not None:
        writer.close()
    atomic_write_bytes(path, sink.getvalue().to_pybytes())
    return len(order)


def _column_to_numpy(col: pa.Array) -> np.ndarray:
    if pa.types.is_fixed_size_list(col.type):
        return col.values.to_numpy(zero_copy_only=False).reshape(len(col), col.type.list_size)
    return col.to_numpy(zero_copy_only=False)


class FeatureReader:
    """Memory-mapped minibatches from a features Arrow file; order is a pure function of the seed.

    With ``shuffle``, record batches are visited in a per-epoch permuted order and rows permuted
    within each; training files are also written in a random row order, so together this mixes
    the whole log while holding one record batch in memory. Step ``k`` of epoch ``e`` is always the
    same rows, which is what makes resume-from-checkpoint exact.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._reader = ipc.open_file(pa.memory_map(str(self.path), "r"))
        self.sizes = [self._reader.get_batch(i).num_rows for i in range(self._reader.num_record_batches)]
        self.num_rows = int(sum(self.sizes))

    def steps_per_epoch(self, batch_size: int) -> int:
        return int(sum(-(-n // batch_size) for n in self.sizes))

    @property
    def column_names(self) -> list[str]:
        return list(self._reader.schema.names)

    def column(self, name: str) -> np.ndarray:
        """One whole column (for evaluation bookkeeping: labels, users, segments)."""
        parts = [_column_to_numpy(self._reader.get_batch(i).column(name)) for i in range(len(self.sizes))]
        return np.concatenate(parts) if parts else np.zeros(0)

    def batches(
        self, batch_size: int, shuffle: bool = False, seed: int = 0, epoch: int = 0, start_step: int = 0
    ) -> Iterator[dict[str, torch.Tensor]]:
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(len(self.sizes)) if shuffle else np.arange(len(self.sizes))
        step = 0
        for bi in order:
            n = self.sizes[bi]
            n_steps = -(-n // batch_size)
            perm = rng.permutation(n) if shuffle else None
            if step + n_steps <= start_step:
                step += n_steps
                continue
            rb = self._reader.get_batch(int(bi))
            cols = {name: _column_to_numpy(rb.column(name)) for name in rb.schema.names}
            for s in range(0, n, batch_size):
                if step >= start_step:
                    sel = perm[s : s + batch_size] if perm is not None else slice(s, s + batch_size)
                    yield {k: torch.from_numpy(np.array(v[sel])) for k, v in cols.items()}
                step += 1
