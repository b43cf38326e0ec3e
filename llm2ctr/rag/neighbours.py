"""Leak-free neighbour retrieval and the relevance edge-case rule, vectorised over query batches.

Leakage guard (every candidate is checked, whatever the index holds): a retrieved pair must be
in the training split and labelled; it is never the pair itself, never a pair with the same
normalised query and item text, never a pair of the same query when ``exclude_same_query``; and
a row keeps only the most similar of several candidates with the same query and item text.
Pairs of another table (unlabelled distillation pairs) are checked by the same rule against the
labelled table's rows (``Guard.for_external``): their examples too are labelled training pairs only.

Edge-case rule: the majority label of a pair's k neighbours is the most frequent rsl among them
(ties go to the label with the larger summed similarity). Edge cases are the most similar valid
candidates ranked after the k neighbours, within the ``edge_window`` nearest, whose rsl differs
from that majority and whose similarity is at least ``edge_min_sim``: near examples whose label
disagrees with what the neighbourhood suggests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from llm2ctr.rag import artifact as A
from llm2ctr.rag.index import search, set_search_params

EDGE_RULE = (
    "majority = most frequent rsl among the k neighbours (ties: larger summed similarity); edge cases = "
    "the most similar allowed training pairs after the k neighbours, within the edge_window nearest, "
    "whose rsl differs from the majority and whose cosine similarity >= edge_min_sim"
)


def text_codes(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Integer code per row of a text column, equal for texts equal up to case and whitespace."""
    norm = pc.utf8_lower(column)
    norm = pc.replace_substring_regex(norm, pattern=r"\s+", replacement=" ")
    norm = pc.utf8_trim_whitespace(norm)
    enc = pc.dictionary_encode(norm)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.unify_dictionaries().combine_chunks() if enc.num_chunks else pa.array([], pa.int32())
    idx = enc.indices if isinstance(enc, pa.DictionaryArray) else enc
    return np.asarray(idx.to_numpy(zero_copy_only=False), dtype=np.int64)


def retrievable_rows(pairs: pa.Table) -> np.ndarray:
    """Bool per row: the pair may be shown as an example (training split and labelled)."""
    split = np.asarray(pairs.column("split").to_numpy(zero_copy_only=False)) == "train"
    labelled = ~np.asarray(pairs.column("rsl").is_null().to_numpy(zero_copy_only=False))
    return split & labelled


@dataclass
class Guard:
    """Per pairs-table row: what a candidate must satisfy to be retrievable for a query row."""

    pair_key: np.ndarray  # int64, same normalised (query, item_text) -> same key
    query_key: np.ndarray  # int64, same normalised query -> same key
    retrievable: np.ndarray  # bool, train split and labelled
    exclude_same_query: bool = True

    @classmethod
    def from_pairs(cls, pairs: pa.Table, exclude_same_query: bool = True) -> Guard:
        q = text_codes(pairs.column("query"))
        t = text_codes(pairs.column("item_text"))
        pair_key = q * (int(t.max(initial=0)) + 1) + t
        return cls(pair_key, q, retrievable_rows(pairs), exclude_same_query)

    @classmethod
    def for_external(cls, examples: pa.Table, external: pa.Table, exclude_same_query: bool = True) -> Guard:
        """A guard over ``examples`` rows followed by ``external`` rows (query row ``len(examples) + i``).

        Texts are coded jointly, so an external pair's query and (query, item text) keys compare
        with the examples'; only examples rows can be retrievable (train split, labelled), external
        rows never are, whatever their split or label.
        """
        texts = {c: pa.chunked_array([ch.cast(pa.string()) for tab in (examples, external) for ch in tab.column(c).chunks],
                                     pa.string())
                 for c in ("query", "item_text")}
        q = text_codes(texts["query"])
        t = text_codes(texts["item_text"])
        pair_key = q * (int(t.max(initial=0)) + 1) + t
        retrievable = np.concatenate([retrievable_rows(examples), np.zeros(external.num_rows, dtype=bool)])
        return cls(pair_key, q, retrievable, exclude_same_query)

    def mask(self, query_rows: np.ndarray, cand_rows: np.ndarray) -> np.ndarray:
        """Bool [n, K]: candidate ``cand_rows[i, j]`` (-1 = none) may be shown to ``query_rows[i]``."""
        present = cand_rows >= 0
        c = np.where(present, cand_rows, 0)
        q = query_rows[:, None]
        ok = present & self.retrievable[c] & (c != q) & (self.pair_key[c] != self.pair_key[q])
        if self.exclude_same_query:
            ok &= self.query_key[c] != self.query_key[q]
        # keep the first (most similar) of candidates sharing a query + item text
        keys = np.where(ok, self.pair_key[c], -1 - np.arange(c.shape[1], dtype=np.int64)[None, :])
        order = np.argsort(keys, axis=1, kind="stable")
        sorted_keys = np.take_along_axis(keys, order, axis=1)
        dup = np.zeros_like(ok)
        np.put_along_axis(dup, order[:, 1:], sorted_keys[:, 1:] == sorted_keys[:, :-1], axis=1)
        return ok & ~dup


def compact(rows: np.ndarray, sims: np.ndarray, ok: np.ndarray, want: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the first ``want`` allowed candidates of each row, in order; pad with -1 / -inf."""
    order = np.argsort(~ok, axis=1, kind="stable")[:, :want]
    keep = np.take_along_axis(ok, order, axis=1)
    out_rows = np.where(keep, np.take_along_axis(rows, order, axis=1), -1)
    out_sims = np.where(keep, np.take_along_axis(sims, order, axis=1), -np.inf).astype(np.float32)
    if out_rows.shape[1] < want:  # fewer candidates fetched than wanted
        pad = want - out_rows.shape[1]
        out_rows = np.pad(out_rows, ((0, 0), (0, pad)), constant_values=-1)
        out_sims = np.pad(out_sims, ((0, 0), (0, pad)), constant_values=-np.inf)
    return out_rows, out_sims


def retrieve(
    index: faiss.Index,
    queries: np.ndarray,
    query_rows: np.ndarray,
    faiss_to_row: np.ndarray,
    guard: Guard,
    want: int,
    overfetch: float = 2.0,
    ef_search: int = 128,
    nprobe: int = 32,
    batch: int = 4096,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``want`` most similar allowed pairs-table rows for each query row, best first.

    Over-fetches, masks with the guard and compacts; rows left short are searched again with a
    4x larger fetch until they are full or the whole index has been seen.
    """
    n = len(queries)
    out_rows = np.full((n, want), -1, dtype=np.int64)
    out_sims = np.full((n, want), -np.inf, dtype=np.float32)
    todo = np.arange(n)
    fetch = max(want, math.ceil(want * overfetch))
    while len(todo):
        fetch = min(fetch, index.ntotal)
        set_search_params(index, ef_search, nprobe, fetch)
        sims, ids = search(index, queries[todo], fetch, batch)
        cand = np.where(ids >= 0, faiss_to_row[np.where(ids >= 0, ids, 0)], -1)
        ok = guard.mask(query_rows[todo], cand)
        r, s = compact(cand, sims, ok, want)
        out_rows[todo], out_sims[todo] = r, s
        short = (r < 0).any(axis=1)
        if fetch >= index.ntotal or not short.any():
            break
        todo, fetch = todo[short], fetch * 4
    return out_rows, out_sims


@dataclass
class Selection:
    nb_rows: np.ndarray  # [n, k] pairs-table rows, -1 = none
    nb_sims: np.ndarray
    majority: np.ndarray  # [n] int8 majority rsl of the neighbours, 0 = no neighbours
    edge_rows: np.ndarray  # [n, k_edge]
    edge_sims: np.ndarray


def majority_label(labels: np.ndarray, sims: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Most frequent rsl (1..4) per row; ties -> larger summed similarity; 0 for empty rows."""
    k = labels.shape[1]
    onehot = (labels[:, :, None] == np.arange(1, 5)[None, None, :]) & present[:, :, None]
    counts = onehot.sum(axis=1).astype(np.float64)
    simsum = np.where(onehot, np.nan_to_num(sims, neginf=0.0)[:, :, None], 0.0).sum(axis=1)
    score = counts + (simsum + k) / (2 * k + 1)  # tie-break term in [0, 1): never beats a count
    maj = (score.argmax(axis=1) + 1).astype(np.int8)
    maj[~present.any(axis=1)] = 0
    return maj


def select(
    rows: np.ndarray, sims: np.ndarray, rsl: np.ndarray, k: int, k_edge: int, edge_min_sim: float
) -> Selection:
    """Split compacted candidates into k neighbours and ``k_edge`` edge cases (module doc's rule)."""
    nb_rows, nb_sims = rows[:, :k], sims[:, :k]
    present = nb_rows >= 0
    labels = np.where(present, rsl[np.where(present, nb_rows, 0)], 0)
    maj = majority_label(labels, nb_sims, present)
    rest_rows, rest_sims = rows[:, k:], sims[:, k:]
    rest_lab = np.where(rest_rows >= 0, rsl[np.where(rest_rows >= 0, rest_rows, 0)], 0)
    ok = (rest_rows >= 0) & (maj[:, None] > 0) & (rest_lab != maj[:, None]) & (rest_sims >= edge_min_sim)
    edge_rows, edge_sims = compact(rest_rows, rest_sims, ok, k_edge)
    return Selection(nb_rows, nb_sims, maj, edge_rows, edge_sims)


def _lists(rows: np.ndarray, values: pa.Array | np.ndarray, dtype: pa.DataType) -> pa.ListArray:
    """A list column from a -1-padded [n, k] row matrix, taking ``values`` at the kept rows."""
    keep = rows >= 0
    offsets = np.concatenate([[0], np.cumsum(keep.sum(axis=1))]).astype(np.int32)
    flat = rows[keep]
    vals = values.take(pa.array(flat)) if isinstance(values, pa.Array) else pa.array(values[flat])
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), vals.cast(dtype))


def _sim_lists(rows: np.ndarray, sims: np.ndarray) -> pa.ListArray:
    keep = rows >= 0
    offsets = np.concatenate([[0], np.cumsum(keep.sum(axis=1))]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(sims[keep], pa.float32()))


def to_table(pairs: pa.Table, sel: Selection, row_ids: pa.Array | pa.ChunkedArray | None = None) -> pa.Table:
    """The neighbours artifact: one row per pair, in the pairs table's order.

    ``sel`` holds rows of ``pairs`` (the retrieval examples). ``row_ids``: the pair_ids the rows of
    ``sel`` belong to when they are not ``pairs``' own (neighbours of an external pairs table).
    """
    pair_ids = pairs.column("pair_id").combine_chunks()
    rsl = np.asarray(pairs.column("rsl").fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int8)
    if row_ids is not None:
        row_ids = row_ids.combine_chunks() if isinstance(row_ids, pa.ChunkedArray) else row_ids
        if len(row_ids) != len(sel.nb_rows):
            raise ValueError(f"to_table: {len(row_ids)} row ids for {len(sel.nb_rows)} selected rows")
    return pa.table(
        {
            A.PAIR_ID: pair_ids if row_ids is None else row_ids.cast(pa.string()),
            A.NB_PAIR_IDS: _lists(sel.nb_rows, pair_ids, pa.string()),
            A.NB_RSL: _lists(sel.nb_rows, rsl, pa.int8()),
            A.NB_SIM: _sim_lists(sel.nb_rows, sel.nb_sims),
            A.NB_MAJORITY_RSL: pa.array(sel.majority, pa.int8(), mask=sel.majority == 0),
            A.EDGE_PAIR_IDS: _lists(sel.edge_rows, pair_ids, pa.string()),
            A.EDGE_RSL: _lists(sel.edge_rows, rsl, pa.int8()),
            A.EDGE_SIM: _sim_lists(sel.edge_rows, sel.edge_sims),
        }
    )
