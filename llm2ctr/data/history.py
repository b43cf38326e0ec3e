"""User histories and cross-user sequences per request (PRECTR-V2 cold-start preference mining).

For every request (events and counterfactual share request ids, so one row serves both):

- ``hist_*``: the user's last ``m`` behaviours strictly before the request's ts, oldest first. A
  behaviour is a clicked impression (``behaviour="click"``) or any impression (``"impression"``).
  Found with one binary search per request over behaviours sorted by (user, ts).
- ``cross_*``: the request category's ``top_users_per_category`` most active users of the
  training window (distinct requests in that category in ``split == "train"`` events; all events
  when there is no split column), their behaviours in that category strictly before the
  request's ts (so never the same request), and the top ``cross_user_k`` of them by similarity of
  their query to the request's query, best first; ties go to the more recent behaviour.

Similarity is pluggable (:class:`Similarity`): TF-IDF cosine over word tokens by default, or
any text embedder (the rag stage's) through :class:`EmbeddingSimilarity`. Work is vectorised per
category and chunk of requests; there is no Python loop over events.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp
from tqdm.auto import tqdm

from llm2ctr.data.config import HistoryConfig
from llm2ctr.errors import ConfigError, InputError

HISTORY_SCHEMA = pa.schema([
    pa.field("request_id", pa.string(), nullable=False),
    pa.field("hist_pair_ids", pa.list_(pa.string())),
    pa.field("hist_clicks", pa.list_(pa.int8())),
    pa.field("hist_rsl", pa.list_(pa.int8())),
    pa.field("hist_ts", pa.list_(pa.int64())),
    pa.field("cross_pair_ids", pa.list_(pa.string())),
    pa.field("cross_clicks", pa.list_(pa.int8())),
    pa.field("cross_rsl", pa.list_(pa.int8())),
    pa.field("cross_sim", pa.list_(pa.float32())),
    pa.field("n_hist", pa.int32(), nullable=False),
])


@runtime_checkable
class Similarity(Protocol):
    """Maps texts to L2-normalised row vectors; the similarity of two texts is their dot product."""

    def vectors(self, texts: Sequence[str]) -> np.ndarray | sp.spmatrix: ...


class TokenOverlapSimilarity:
    """TF-IDF cosine over word tokens (sklearn), fitted on the texts it is asked to embed."""

    def vectors(self, texts: Sequence[str]) -> sp.csr_matrix:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vec = TfidfVectorizer(token_pattern=r"(?u)\b\w+\b", sublinear_tf=True, norm="l2")
        return vec.fit_transform(list(texts)).tocsr()


class EmbeddingSimilarity:
    """Cosine of dense embeddings from any ``embed(texts) -> array [n, d]`` (e.g. the rag embedder)."""

    def __init__(self, embed: Callable[[list[str]], np.ndarray]):
        self.embed = embed

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        v = np.asarray(self.embed(list(texts)), dtype=np.float32)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def make_similarity(name: str) -> Similarity:
    """The similarity named in the config; ``embedder`` needs a callable, so it comes from the rag stage."""
    if name == "token_overlap":
        return TokenOverlapSimilarity()
    if name == "embedder":
        raise ConfigError("data.history.similarity=embedder: build it with the rag stage "
                         "(llm2ctr.data.history.EmbeddingSimilarity(embed)) and pass it to build_history")
    raise ConfigError(f"data.history.similarity={name!r}: expected 'token_overlap' or 'embedder'")


def _ragged_arange(counts: np.ndarray) -> np.ndarray:
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(int(counts.sum())) - starts


def _list_array(lengths: np.ndarray, values: pa.Array) -> pa.ListArray:
    offsets = pa.array(np.r_[0, np.cumsum(lengths)].astype(np.int32))
    return pa.ListArray.from_arrays(offsets, values)


def _np(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False)


def _check(events: pa.Table, cfg: HistoryConfig, source: str) -> None:
    need = ["request_id", "user_id", "ts", "query", "category", "pair_id", "click", "rsl"]
    missing = [c for c in need if c not in events.column_names]
    if missing:
        raise InputError(f"{source}: missing column(s) {missing}; history needs {need}")
    if cfg.behaviour not in ("click", "impression"):
        raise ConfigError(f"data.history.behaviour={cfg.behaviour!r}: expected 'click' or 'impression'")
    if cfg.max_user_history < 0 or cfg.cross_user_k < 0 or cfg.top_users_per_category < 0:
        raise ConfigError("data.history: max_user_history, cross_user_k and top_users_per_category must be >= 0")


def build_history(events: pa.Table, cfg: HistoryConfig, similarity: Similarity | None = None,
                  source: str = "events") -> pa.Table:
    """One row per request (first-appearance order) with ``HISTORY_SCHEMA``'s columns."""
    _check(events, cfg, source)
    similarity = similarity or TokenOverlapSimilarity()
    req_code, req_ids = pd.factorize(pd.Series(_np(events, "request_id"), dtype=object), sort=False)
    nr = len(req_ids)
    first = np.full(nr, len(req_code), dtype=np.int64)
    np.minimum.at(first, req_code, np.arange(len(req_code)))
    user_code, _ = pd.factorize(pd.Series(_np(events, "user_id"), dtype=object), sort=True)
    query_code, query_texts = pd.factorize(pd.Series(_np(events, "query"), dtype=object), sort=True)
    cat_code, cat_names = pd.factorize(pd.Series(_np(events, "category"), dtype=object), sort=True)
    ts = np.asarray(_np(events, "ts"), dtype=np.int64)
    click = np.asarray(_np(events, "click"), dtype=np.int8)
    rsl = np.asarray(events.column("rsl").fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int8)
    r_user, r_ts, r_query, r_cat = user_code[first], ts[first], query_code[first], cat_code[first]

    is_b = behaviour_mask(click, cfg.behaviour)
    b_rows, user_start, end = prior_behaviours(user_code, ts, is_b, r_user, r_ts)
    n_hist = (end - np.maximum(user_start, end - cfg.max_user_history)).astype(np.int32)
    h_rows = b_rows[np.repeat(end - n_hist, n_hist) + _ragged_arange(n_hist)]

    cross_req, cross_rows, cross_sim = _cross_user(
        events, cfg, similarity, query_texts, req_code, user_code, query_code, cat_code, ts, is_b,
        r_ts, r_query, r_cat, len(cat_names))
    order = np.argsort(cross_req, kind="stable")  # group the cross entries by request
    cross_rows, cross_sim = cross_rows[order], cross_sim[order]
    cross_len = np.bincount(cross_req, minlength=nr)

    pair_ids = events.column("pair_id").combine_chunks()
    return pa.Table.from_arrays([
        pa.array(np.asarray(req_ids, dtype=object), pa.string()),
        _list_array(n_hist, pair_ids.take(pa.array(h_rows, pa.int64()))),
        _list_array(n_hist, pa.array(click[h_rows], pa.int8())),
        _list_array(n_hist, pa.array(rsl[h_rows], pa.int8())),
        _list_array(n_hist, pa.array(ts[h_rows], pa.int64())),
        _list_array(cross_len, pair_ids.take(pa.array(cross_rows, pa.int64()))),
        _list_array(cross_len, pa.array(click[cross_rows], pa.int8())),
        _list_array(cross_len, pa.array(rsl[cross_rows], pa.int8())),
        _list_array(cross_len, pa.array(cross_sim, pa.float32())),
        pa.array(n_hist, pa.int32()),
    ], schema=HISTORY_SCHEMA)


def behaviour_mask(click: np.ndarray, behaviour: str) -> np.ndarray:
    """Which events count as behaviours: clicked impressions, or every impression."""
    return click == 1 if behaviour == "click" else np.ones(len(click), bool)


def prior_behaviours(user_code: np.ndarray, ts: np.ndarray, is_behaviour: np.ndarray, q_user: np.ndarray,
                     q_ts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Behaviour rows sorted by (user, ts, row) and, per query (user, ts), the half-open range
    ``[start, end)`` of that user's behaviours strictly before ts (one binary search per query).

    The user history of any length is then ``b_rows[max(start, end - m):end]``: the ranker's
    long-history tower reads the whole range, ``build_history`` the last ``m``.
    """
    b_rows = np.flatnonzero(is_behaviour)
    b_rows = b_rows[np.lexsort((b_rows, ts[b_rows], user_code[b_rows]))]
    t0 = int(min(ts.min(), q_ts.min())) if len(ts) and len(q_ts) else 0
    t1 = int(max(ts.max(), q_ts.max())) if len(ts) and len(q_ts) else 0
    span = t1 - t0 + 2
    b_key = user_code[b_rows].astype(np.int64) * span + (ts[b_rows] - t0)
    q_user = q_user.astype(np.int64)
    end = np.searchsorted(b_key, q_user * span + (q_ts - t0), "left")
    start = np.searchsorted(b_key, q_user * span, "left")
    return b_rows, start, end


def top_users(events: pa.Table, user_code: np.ndarray, cat_code: np.ndarray, req_code: np.ndarray,
              per_category: int) -> np.ndarray:
    """Sorted keys ``category * n_users + user`` of each category's most active training-window users.

    Activity = distinct requests in the category with ``split == "train"``; ties go to the smaller
    user id. Only (category, user) pairs that occur are touched (no dense category x user matrix).
    """
    n_users = int(user_code.max()) + 1 if len(user_code) else 1
    train = (_np(events, "split") == "train") if "split" in events.column_names else np.ones(len(user_code), bool)
    rows = np.flatnonzero(train)
    _, uniq = np.unique(req_code[rows], return_index=True)  # one count per request
    rows = rows[uniq]
    keys, counts = np.unique(cat_code[rows].astype(np.int64) * n_users + user_code[rows], return_counts=True)
    cat = keys // n_users
    order = np.lexsort((keys % n_users, -counts, cat))
    per_cat = np.bincount(cat, minlength=int(cat.max()) + 1 if len(cat) else 0)
    rank = np.arange(len(order)) - np.repeat(np.cumsum(per_cat) - per_cat, per_cat)
    return np.sort(keys[order][rank < per_category])


def _cross_user(events: pa.Table, cfg: HistoryConfig, similarity: Similarity, query_texts: pd.Index,
                req_code: np.ndarray, user_code: np.ndarray, query_code: np.ndarray, cat_code: np.ndarray,
                ts: np.ndarray, is_b: np.ndarray, r_ts: np.ndarray, r_query: np.ndarray, r_cat: np.ndarray,
                n_cat: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(request index, event row, similarity) of every selected cross-user behaviour."""
    k = cfg.cross_user_k
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
    if k == 0 or cfg.top_users_per_category == 0 or not is_b.any():
        return empty
    chosen = top_users(events, user_code, cat_code, req_code, cfg.top_users_per_category)
    n_users = int(user_code.max()) + 1 if len(user_code) else 1
    pool_rows = np.flatnonzero(is_b & np.isin(cat_code.astype(np.int64) * n_users + user_code, chosen))
    pool_rows = pool_rows[np.lexsort((pool_rows, ts[pool_rows], cat_code[pool_rows]))]
    p_cat = cat_code[pool_rows]
    cat_start = np.searchsorted(p_cat, np.arange(n_cat), "left")
    cat_end = np.searchsorted(p_cat, np.arange(n_cat), "right")
    vecs = similarity.vectors([str(t) for t in query_texts])
    out_req, out_rows, out_sim = [], [], []
    req_by_cat = np.argsort(r_cat, kind="stable")
    r_cat_sorted = r_cat[req_by_cat]
    chunks = []
    for c in range(n_cat):
        lo, hi = np.searchsorted(r_cat_sorted, c, "left"), np.searchsorted(r_cat_sorted, c, "right")
        n_pool = int(cat_end[c] - cat_start[c])
        if hi == lo or n_pool == 0:
            continue
        step = max(1, min(cfg.chunk_requests, 20_000_000 // n_pool))
        chunks += [(c, s, min(s + step, hi)) for s in range(lo, hi, step)]
    for c, s, e in tqdm(chunks, desc="history: cross-user", unit="chunk", leave=False, disable=len(chunks) < 4):
        reqs = req_by_cat[s:e]
        prow = pool_rows[cat_start[c]:cat_end[c]]
        uq_r, inv_r = np.unique(r_query[reqs], return_inverse=True)
        uq_p, inv_p = np.unique(query_code[prow], return_inverse=True)
        sq = vecs[uq_r] @ vecs[uq_p].T
        sq = np.asarray(sq.todense() if sp.issparse(sq) else sq, dtype=np.float64)
        sim = sq[inv_r][:, inv_p]
        n_p = len(prow)
        # unique integer keys: similarity (1e-6 resolution) first, then recency (pool is ts-sorted)
        key = np.rint(np.clip(sim, -1.0, 1.0) * 1e6 + 1e6).astype(np.int64) * (n_p + 1) + np.arange(1, n_p + 1)
        key[ts[prow][None, :] >= r_ts[reqs][:, None]] = 0
        kk = min(k, n_p)
        top = np.argpartition(-key, kk - 1, axis=1)[:, :kk] if kk < n_p else np.argsort(-key, axis=1)
        top_key = np.take_along_axis(key, top, axis=1)
        order = np.argsort(-top_key, axis=1, kind="stable")
        top, top_key = np.take_along_axis(top, order, 1), np.take_along_axis(top_key, order, 1)
        ok = top_key > 0
        ri = np.repeat(reqs, ok.sum(1))
        out_req.append(ri)
        out_rows.append(prow[top[ok]])
        out_sim.append(np.take_along_axis(sim, top, 1)[ok].astype(np.float32))
    if not out_req:
        return empty
    return np.concatenate(out_req), np.concatenate(out_rows), np.concatenate(out_sim)
