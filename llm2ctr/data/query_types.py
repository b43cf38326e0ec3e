"""Fine-grained query types and their relevance-sensitivity effects (the ``query_types`` world).

Why: in the classic world a user's relevance sensitivity is ``category mean + user deviation``;
every ranker sees the category id and no other user's behaviour reveals the private deviation, so
PRECTR-V2's cross-user (cold-start) module has nothing to find. Here sensitivity also depends on a
long-tail *query type*: a small cluster of similar queries inside a category, finer than any id
feature the ranker sees. Behaviours of active users on similar queries then carry information a
cold-start user's own history lacks.

Types: per category, TF-IDF over word tokens of the query text (sublinear tf, l2) and KMeans with
``k = max(1, round(n_queries / queries_per_type))``. Large categories are first cut into blocks of
about ``BLOCK_QUERIES`` queries by a coarse KMeans, then each block is clustered with its share of
``k`` (KMeans cost grows as queries x clusters; this keeps a 100k-query pool in seconds).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import sparse

from llm2ctr.data.config import SimulateConfig

TOKEN_PATTERN = r"(?u)\b\w+\b"
BLOCK_QUERIES = 1000  # above ~2x this many queries a category is pre-split into blocks of about this size


def _tfidf(texts: np.ndarray) -> sparse.csr_matrix | None:
    """Rows l2-normalised, sublinear tf; None when no text has a word token."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(token_pattern=TOKEN_PATTERN, sublinear_tf=True, norm="l2", dtype=np.float64)
    try:
        return vec.fit_transform([str(t) for t in texts]).tocsr()
    except ValueError:  # empty vocabulary: nothing to tell the queries apart
        return None


def _kmeans(x: sparse.csr_matrix, k: int, random_state: int) -> np.ndarray:
    """KMeans labels (n_init=1); single-threaded so the labels do not depend on the machine's cores."""
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    k = min(k, x.shape[0])
    if k <= 1:
        return np.zeros(x.shape[0], dtype=np.int64)
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # fewer distinct queries than clusters
        km = KMeans(n_clusters=k, n_init=1, random_state=random_state, max_iter=100)
        return km.fit_predict(x).astype(np.int64)


def _cluster_category(texts: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Local type labels (0-based, arbitrary order) of one category's queries."""
    n = len(texts)
    if k <= 1 or n <= 1:
        return np.zeros(n, dtype=np.int64)
    x = _tfidf(texts)
    if x is None:
        return np.zeros(n, dtype=np.int64)
    n_blocks = n // BLOCK_QUERIES if n >= 2 * BLOCK_QUERIES else 1
    if n_blocks == 1:
        return _kmeans(x, k, int(rng.integers(2**31 - 1)))
    block = _kmeans(x, n_blocks, int(rng.integers(2**31 - 1)))
    labels = np.zeros(n, dtype=np.int64)
    offset = 0
    for b in range(int(block.max()) + 1):  # a loop over blocks (tens), not over queries
        rows = np.flatnonzero(block == b)
        if len(rows) == 0:
            continue
        kb = max(1, int(np.floor(k * len(rows) / n + 0.5)))
        labels[rows] = _kmeans(x[rows], kb, int(rng.integers(2**31 - 1))) + offset
        offset += kb
    return labels


def assign_query_types(query_text: np.ndarray, query_cat: np.ndarray, queries_per_type: float,
                       rng: np.random.Generator) -> np.ndarray:
    """Global type id per query: category-major, and inside a category numbered by first query.

    Types never cross categories. Ids are compact (0..n_types-1) even when KMeans leaves a
    cluster empty (e.g. identical token sets).
    """
    n_cat = int(query_cat.max()) + 1 if len(query_cat) else 0
    local = np.zeros(len(query_text), dtype=np.int64)
    for c in range(n_cat):  # a loop over categories, each one vectorised
        rows = np.flatnonzero(query_cat == c)
        k = max(1, int(np.floor(len(rows) / queries_per_type + 0.5)))
        local[rows] = _cluster_category(query_text[rows], k, rng)
    # compact ids: (category, local label) pairs numbered in order of the first query that has them
    key = query_cat.astype(np.int64) * (int(local.max()) + 1 if len(local) else 1) + local
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    cat_of = query_cat[first]
    order = np.lexsort((first, cat_of))  # category-major, then by first query
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse].astype(np.int64)


def type_effects(n_types: int, cfg: SimulateConfig, static_rng: np.random.Generator,
                 drift_rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(static effect per type, drift [n_types, days]): ``N(0, type_sensitivity_sd)`` and a random
    walk over the log's days with step sd ``type_drift_sd``; day 0 drift is 0."""
    static = static_rng.normal(0.0, cfg.type_sensitivity_sd, n_types)
    steps = drift_rng.normal(0.0, cfg.type_drift_sd, (n_types, max(cfg.days - 1, 0)))
    drift = np.concatenate([np.zeros((n_types, 1)), np.cumsum(steps, axis=1)], axis=1)
    return static, drift
