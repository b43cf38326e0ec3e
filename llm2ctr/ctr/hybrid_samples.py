"""HCCP-style hybrid samples: each click next to its request's unexposed and lower-relevance items.

The exposed log only teaches the ranker about items the upstream stages chose to show. HCCP mixes
in the candidates that were *not* shown: for every clicked training row we list up to ``n``
negatives of the same request, drawn (seeded) from

- its unexposed candidates (a simulated log: the all-candidates set's ``exposed == False`` rows;
  a real log: the user's own candidate log in the same events format), and
- its exposed, unclicked items of lower known relevance than the clicked one.

Only *which* items were candidates is read, never their counterfactual clicks. A negative differs
from the clicked row in the item alone (same user, query, context, history), so the model scores
it by swapping the item-level inputs (:func:`pair_item_inputs`): its pair embedding and lexical
features, and every sparse / numeric column that is constant per item in the log (brand, price).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from llm2ctr.ctr.features import FeatureSpec, PairFeatures, hash_values

ITEM_FILE = "pair_items.safetensors"


def _col(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False)


def _ragged_arange(counts: np.ndarray) -> np.ndarray:
    return np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)


def hybrid_negatives(events: pa.Table, unexposed: pa.Table | None, pairs: PairFeatures, n: int,
                     seed: int) -> np.ndarray:
    """[len(events), n] pair rows of each clicked row's hybrid negatives (-1 padding; all -1 when
    the row is not a click). Vectorised: one sort of the candidates by request, one ragged join."""
    out = np.full((events.num_rows, n), -1, dtype=np.int64)
    if n <= 0 or events.num_rows == 0:
        return out
    req_index = pd.Index(pd.unique(np.asarray(_col(events, "request_id"), dtype=object)))
    ev_req = req_index.get_indexer(np.asarray(_col(events, "request_id"), dtype=object))
    ev_pidx = pairs.pair_ids.get_indexer(np.asarray(_col(events, "pair_id"), dtype=object))
    ev_click = np.asarray(_col(events, "click"), dtype=np.int64)
    ev_rsl = np.nan_to_num(_col(events, "rsl").astype(np.float64)).astype(np.int64)
    # candidates: exposed unclicked rows with a known level, then unexposed ones (level -1: below any)
    exp_rows = np.flatnonzero((ev_click == 0) & (ev_rsl > 0))
    c_req, c_pidx, c_rsl = [ev_req[exp_rows]], [ev_pidx[exp_rows]], [ev_rsl[exp_rows]]
    if unexposed is not None and unexposed.num_rows:
        u_req = req_index.get_indexer(np.asarray(_col(unexposed, "request_id"), dtype=object))
        u_pidx = pairs.pair_ids.get_indexer(np.asarray(_col(unexposed, "pair_id"), dtype=object))
        keep = (u_req >= 0) & (u_pidx >= 0)
        c_req.append(u_req[keep])
        c_pidx.append(u_pidx[keep])
        c_rsl.append(np.full(int(keep.sum()), -1, dtype=np.int64))
    cand_req, cand_pidx, cand_rsl = (np.concatenate(c) for c in (c_req, c_pidx, c_rsl))
    rng = np.random.default_rng([int(seed), 4417])
    order = np.lexsort((rng.random(len(cand_req)), cand_req))  # seeded random order within a request
    cand_req, cand_pidx, cand_rsl = cand_req[order], cand_pidx[order], cand_rsl[order]
    clicked = np.flatnonzero((ev_click == 1) & (ev_pidx >= 0))
    lo = np.searchsorted(cand_req, ev_req[clicked], "left")
    hi = np.searchsorted(cand_req, ev_req[clicked], "right")
    owner = np.repeat(np.arange(len(clicked)), hi - lo)
    cand = np.repeat(lo, hi - lo) + _ragged_arange(hi - lo)
    level = ev_rsl[clicked][owner]
    # unexposed always; exposed only below the click's known level (an unlabelled click: unexposed only)
    ok = (cand_rsl[cand] < 0) | ((level > 0) & (cand_rsl[cand] < level))
    owner, cand = owner[ok], cand[ok]
    rank = _ragged_arange(np.bincount(owner, minlength=len(clicked)))
    take = rank < n
    out[clicked[owner[take]], rank[take]] = cand_pidx[cand[take]]
    return out


def _constant_per_item(item: np.ndarray, values: np.ndarray) -> bool:
    frame = pd.DataFrame({"item": item, "v": values})
    return bool((frame.groupby("item", sort=False)["v"].nunique(dropna=False) <= 1).all())


def pair_item_inputs(tables: list[pa.Table], spec: FeatureSpec, pairs: PairFeatures) -> dict[str, torch.Tensor]:
    """Per pair, the model inputs that belong to its item: hashed sparse ids [P, F] and standardised
    numeric values [P, N] of the fields that are constant per item_id over ``tables``, with masks
    saying which fields those are (``item_sparse_mask``, ``item_numeric_mask``) and which pairs
    were seen (``pair_seen``). A field that varies per impression (position, user) keeps the
    clicked row's value."""
    cols = set.intersection(*(set(t.column_names) for t in tables))
    fields = [f for f in spec.sparse_fields if f in cols]
    numeric = [f for f in spec.numeric_fields if f in cols]
    item = np.concatenate([np.asarray(_col(t, "item_id"), dtype=object).astype(str) for t in tables])
    pid = np.concatenate([np.asarray(_col(t, "pair_id"), dtype=object) for t in tables])
    rows = pairs.pair_ids.get_indexer(pid)
    first = np.full(pairs.n, -1, dtype=np.int64)
    seen = rows >= 0
    uniq_rows, at = np.unique(rows[seen], return_index=True)
    first[uniq_rows] = np.flatnonzero(seen)[at]
    has = first >= 0
    sparse = np.zeros((pairs.n, len(spec.sparse_fields)), dtype=np.int64)
    sparse_mask = np.zeros(len(spec.sparse_fields), dtype=bool)
    for j, f in enumerate(spec.sparse_fields):
        if f not in fields:
            continue
        values = np.concatenate([np.asarray(_col(t, f), dtype=object).astype(str) for t in tables])
        if f == "item_id" or _constant_per_item(item, values):
            sparse_mask[j] = True
            sparse[has, j] = hash_values(f, values[first[has]], spec.buckets)
    dense = np.zeros((pairs.n, len(spec.numeric_fields)), dtype=np.float32)
    dense_mask = np.zeros(len(spec.numeric_fields), dtype=bool)
    for j, f in enumerate(spec.numeric_fields):
        if f not in numeric:
            continue
        values = np.concatenate([_col(t, f).astype(np.float64) for t in tables])
        if _constant_per_item(item, np.round(values, 9)):
            dense_mask[j] = True
            dense[has, j] = np.nan_to_num((values[first[has]] - spec.numeric_mean[j]) / spec.numeric_std[j])
    return {
        "pair_sparse": torch.from_numpy(sparse), "item_sparse_mask": torch.from_numpy(sparse_mask),
        "pair_numeric": torch.from_numpy(dense), "item_numeric_mask": torch.from_numpy(dense_mask),
        "pair_seen": torch.from_numpy(has),
    }


def item_popularity(events: pa.Table, fit_rows: np.ndarray, pairs: PairFeatures) -> tuple[np.ndarray, float]:
    """(impressions of each pair's item in the training rows [P], the items' 20th percentile).

    Items at or below the percentile are the long tail the HCCP report looks at."""
    items = np.asarray(_col(events, "item_id"), dtype=object).astype(str)[fit_rows]
    counts = pd.Series(items).value_counts()
    pair_items = pd.Series(np.asarray(pairs.item_ids, dtype=object).astype(str))
    pop = pair_items.map(counts).fillna(0).to_numpy(dtype=np.int64)
    per_item = pd.Series(pop, index=pair_items).groupby(level=0).first().to_numpy()
    return pop, float(np.quantile(per_item, 0.2)) if len(per_item) else 0.0


def swap_item_inputs(ctx, sparse: torch.Tensor, numeric: torch.Tensor,
                     neg_pidx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The clicked rows' sparse ids [B, F] and numeric [B, N+1] with each negative's item-level
    fields swapped in: [B, K, F] and [B, K, N+1]. Unseen pairs keep the clicked row's values."""
    k = neg_pidx.shape[1]
    p = neg_pidx.clamp(min=0)
    use_s = ctx.item_sparse_mask[None, None, :] & ctx.pair_seen[p][:, :, None]
    sp = torch.where(use_s, ctx.pair_sparse[p], sparse[:, None, :].expand(-1, k, -1))
    n_item = ctx.pair_numeric.shape[1]
    use_n = ctx.item_numeric_mask[None, None, :] & ctx.pair_seen[p][:, :, None]
    num = numeric[:, None, :].expand(-1, k, -1).clone()
    num[:, :, :n_item] = torch.where(use_n, ctx.pair_numeric[p], num[:, :, :n_item])
    return sp, num
