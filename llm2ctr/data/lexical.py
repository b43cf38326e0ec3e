"""Query-item lexical match features: token overlap, BM25 and TF-IDF cosine, one row per pair.

On a real relevance set a TF-IDF model with overlap features beat every neural encoder we tried,
so every ranker (baselines included) gets these. All of it is sparse-matrix arithmetic from
scikit-learn's vectorisers: O(total tokens), no Python loop over pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

LEXICAL_NAMES = (
    "overlap_count",
    "overlap_query_share",
    "jaccard",
    "bm25",
    "tfidf_cosine",
    "log_item_len",
)
_TOKEN = r"(?u)\b\w+\b"


def _rowwise_dot(a: sp.csr_matrix, b: sp.csr_matrix) -> np.ndarray:
    return np.asarray(a.multiply(b).sum(axis=1)).ravel()


def lexical_features(
    queries: Sequence[str], items: Sequence[str], k1: float = 1.2, b: float = 0.75
) -> np.ndarray:
    """[n, len(LEXICAL_NAMES)] float32 for aligned (query, item text) lists.

    BM25 statistics (document frequency, average length) come from the distinct item texts, so
    an item shown with many queries does not inflate its own terms' document frequency.
    """
    if len(queries) != len(items):
        raise ValueError(f"lexical_features: {len(queries)} queries but {len(items)} items")
    n = len(queries)
    if n == 0:
        return np.zeros((0, len(LEXICAL_NAMES)), np.float32)
    counter = CountVectorizer(token_pattern=_TOKEN, lowercase=True)
    counter.fit(list(dict.fromkeys(items)) + list(dict.fromkeys(queries)))
    tq = counter.transform(queries).tocsr()
    ti = counter.transform(items).tocsr()
    bq, bi = (tq > 0).astype(np.float32), (ti > 0).astype(np.float32)
    overlap = _rowwise_dot(bq, bi)
    q_len = np.asarray(bq.sum(axis=1)).ravel()
    i_len_types = np.asarray(bi.sum(axis=1)).ravel()
    union = q_len + i_len_types - overlap
    # BM25 over the distinct item texts as the document collection
    uniq_items = counter.transform(list(dict.fromkeys(items))).tocsr()
    n_docs = uniq_items.shape[0]
    df = np.bincount(uniq_items.indices, minlength=uniq_items.shape[1]).astype(np.float64)
    idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
    dl = np.asarray(ti.sum(axis=1)).ravel().astype(np.float64)
    avgdl = max(float(np.asarray(uniq_items.sum(axis=1)).mean()), 1e-9)
    tf = ti.astype(np.float64).tocsr()
    row_norm = np.repeat(k1 * (1 - b + b * dl / avgdl), np.diff(tf.indptr))
    tf.data = idf[tf.indices] * tf.data * (k1 + 1) / (tf.data + row_norm)
    bm25 = _rowwise_dot(bq.astype(np.float64), tf)
    tfidf = TfidfVectorizer(token_pattern=_TOKEN, lowercase=True, sublinear_tf=True)
    tfidf.fit(list(dict.fromkeys(items)) + list(dict.fromkeys(queries)))
    cos = _rowwise_dot(tfidf.transform(queries).tocsr(), tfidf.transform(items).tocsr())
    out = np.stack(
        [
            overlap,
            overlap / np.maximum(q_len, 1),
            overlap / np.maximum(union, 1),
            bm25,
            cos,
            np.log1p(dl),
        ],
        axis=1,
    )
    return out.astype(np.float32)
