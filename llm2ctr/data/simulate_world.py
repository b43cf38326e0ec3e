"""The simulator's hidden world: candidate pools per query, item traits, users, and requests.

Split from the click model (``simulate.py``) so each half is one idea: here what exists and who
searches for what (in the ``query_types`` world also each query's fine-grained type,
``query_types.py``); there what gets exposed and clicked. Works on any pairs table: only the
required pairs columns are needed; ``brand``/``price``/``true_rsl`` are used when present.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.special import ndtri

from llm2ctr.data.config import SimulateConfig
from llm2ctr.data.query_types import assign_query_types
from llm2ctr.errors import InputError

N_SEGMENTS = 4
SEGMENT_NAMES = ("bargain", "casual", "premium", "enthusiast")


def rng_for(seed: int, cfg: SimulateConfig, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(cfg.seed), stream])


@dataclass
class Pool:
    """Labelled pairs grouped into one candidate pool per query (row indices into ``pairs``)."""

    pairs: pa.Table
    rsl: np.ndarray  # int8 per pair row (true rsl where the table has it)
    query_text: np.ndarray  # object, per query
    query_cat: np.ndarray  # int, per query
    cat_names: np.ndarray  # object, per category
    cand: np.ndarray  # [n_queries, C] pair row index, -1 = padding
    n_cand: np.ndarray  # per query
    n_unlabelled: int  # pairs dropped because their rsl is null
    item_idx: np.ndarray  # per pair row: index into the item arrays below
    item_ids: np.ndarray
    attract: np.ndarray  # per item: attractiveness on the logit scale
    log_price: np.ndarray  # per item
    popularity: np.ndarray  # per item: a sales-count-like proxy of attractiveness (observable)
    price_bucket: np.ndarray  # per item: decile of log price, 0..9
    brand_idx: np.ndarray  # per item
    brand_names: np.ndarray
    brand_effect: np.ndarray  # per brand
    query_type: np.ndarray  # per query: global fine-grained type id (query_types world), -1 in classic
    n_types: int  # 0 in the classic world


def _column(pairs: pa.Table, name: str) -> np.ndarray:
    return pairs.column(name).to_numpy(zero_copy_only=False)


def build_pool(pairs: pa.Table, cfg: SimulateConfig, seed: int, source: str = "pairs") -> Pool:
    """Group labelled pairs by query into pools of at most candidates_per_request, seeded."""
    rsl_col = "true_rsl" if "true_rsl" in pairs.column_names else "rsl"
    rsl_arr = pairs.column(rsl_col)
    labelled = ~np.asarray(rsl_arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    rsl = np.asarray(rsl_arr.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int8)
    bad = labelled & ((rsl < 1) | (rsl > 4))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(f"{source}: row {row}, column '{rsl_col}': value {int(rsl[row])}; expected 1..4 or null")
    rng = rng_for(seed, cfg, 11)
    rows = np.flatnonzero(labelled)
    if len(rows) == 0:
        raise InputError(f"{source}: no labelled pairs (every '{rsl_col}' is null); the simulator needs rsl")
    q_codes, q_text = pd.factorize(pd.Series(_column(pairs, "query")[rows], dtype=object), sort=True)
    # pool = a seeded random subset of each query's labelled pairs (all of them if few enough)
    order = np.lexsort((rng.random(len(rows)), q_codes))
    q_sorted = q_codes[order]
    counts = np.bincount(q_sorted, minlength=len(q_text))
    rank = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
    c = cfg.candidates_per_request
    keep = rank < c
    cand = np.full((len(q_text), c), -1, dtype=np.int64)
    cand[q_sorted[keep], rank[keep]] = rows[order[keep]]
    n_cand = np.minimum(counts, c)
    # a query's category: the category of its first pair in the pool (only categories with queries)
    query_cat, cat_names = pd.factorize(pd.Series(_column(pairs, "category")[cand[:, 0]], dtype=object), sort=True)

    item_codes, item_ids = pd.factorize(pd.Series(_column(pairs, "item_id"), dtype=object), sort=True)
    n_items = len(item_ids)
    first_row = np.full(n_items, len(item_codes), dtype=np.int64)
    np.minimum.at(first_row, item_codes, np.arange(len(item_codes)))
    if "brand" in pairs.column_names:
        brand_of_row = _column(pairs, "brand")[first_row]
    else:  # imported pairs: the first word of the title stands in for the brand
        brand_of_row = pd.Series(_column(pairs, "item_text")[first_row], dtype=object).str.split(n=1).str[0]
        brand_of_row = brand_of_row.fillna("").str.lower().to_numpy(dtype=object)
    brand_idx, brand_names = pd.factorize(pd.Series(brand_of_row, dtype=object).fillna(""), sort=True)
    if "price" in pairs.column_names:
        price = np.asarray(_column(pairs, "price")[first_row], dtype=np.float64)
        price = np.where(np.isfinite(price) & (price > 0), price, np.nan)
    else:
        price = np.full(n_items, np.nan)
    # missing prices: a deterministic lognormal draw keyed by the item id (independent of row order)
    h = pd.util.hash_array(np.asarray(item_ids, dtype=object)).astype(np.float64) / 2.0**64
    h = np.clip(h, 1e-9, 1 - 1e-9)
    fallback = np.exp(np.log(50.0) + 1.0 * ndtri(h))
    price = np.where(np.isnan(price), fallback, price)
    log_price = np.log(price)
    edges = np.quantile(log_price, np.linspace(0, 1, 11)[1:-1])
    price_bucket = np.searchsorted(edges, log_price, side="right").astype(np.int64)

    rng_i = rng_for(seed, cfg, 12)
    attract = rng_i.normal(0.0, cfg.item_attractiveness_sd, n_items)
    popularity = np.round(np.exp(4.0 + 1.5 * attract + rng_i.normal(0.0, 0.5, n_items))).astype(np.int64)
    brand_effect = rng_i.normal(0.0, cfg.brand_effect_sd, len(brand_names))
    if cfg.world == "query_types":  # its own rng stream: the classic draws above are untouched
        query_type = assign_query_types(np.asarray(q_text, dtype=object), query_cat, cfg.queries_per_type,
                                        rng_for(seed, cfg, 51))
    else:
        query_type = np.full(len(q_text), -1, dtype=np.int64)
    return Pool(pairs=pairs, rsl=rsl, query_text=np.asarray(q_text, dtype=object), query_cat=query_cat,
                cat_names=np.asarray(cat_names, dtype=object), cand=cand, n_cand=n_cand,
                n_unlabelled=int((~labelled).sum()), item_idx=item_codes, item_ids=np.asarray(item_ids, dtype=object),
                attract=attract, log_price=log_price, popularity=popularity, price_bucket=price_bucket,
                brand_idx=brand_idx, brand_names=np.asarray(brand_names, dtype=object), brand_effect=brand_effect,
                query_type=query_type, n_types=int(query_type.max()) + 1 if len(query_type) else 0)


@dataclass
class Users:
    """Hidden user traits (the ground truth a ranker should recover)."""

    activity: np.ndarray  # Pareto draw: relative request rate
    segment: np.ndarray  # 0..3, see SEGMENT_NAMES
    bias: np.ndarray  # personal click propensity on the logit scale
    sens_dev: np.ndarray  # user's deviation from the category mean sensitivity
    favourites: np.ndarray  # [n_users, max_fav] category index, sorted by preference
    n_fav: np.ndarray  # how many of them are used
    cat_sens_mean: np.ndarray  # per category mean sensitivity


def build_users(pool: Pool, cfg: SimulateConfig, seed: int) -> Users:
    """Users with Pareto activity, a segment, a bias, favourite categories and sensitivity offsets."""
    rng = rng_for(seed, cfg, 21)
    n, n_cat = cfg.n_users, len(pool.cat_names)
    # Lomax: many near-zero users and a heavy head, clipped so no single user floods the log
    activity = np.minimum(rng.pareto(cfg.activity_alpha, n), cfg.activity_cap)
    segment = rng.integers(0, N_SEGMENTS, n)
    bias = rng.normal(0.0, cfg.user_bias_sd, n)
    sens_dev = rng.normal(0.0, cfg.sensitivity_sd, n)
    lo, hi = cfg.sensitivity_mean_range
    cat_sens_mean = rng.uniform(lo, hi, n_cat)
    # favourite categories: Gumbel top-k over category popularity (number of queries)
    cat_pop = np.bincount(pool.query_cat, minlength=n_cat).astype(float) + 1e-9
    k = min(cfg.max_favourite_categories, n_cat)
    scores = np.log(cat_pop)[None, :] + rng.gumbel(size=(n, n_cat))
    favourites = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    n_fav = rng.integers(1, k + 1, n)
    return Users(activity=activity, segment=segment, bias=bias, sens_dev=sens_dev, favourites=favourites,
                 n_fav=n_fav, cat_sens_mean=cat_sens_mean)


@dataclass
class Requests:
    user: np.ndarray
    ts: np.ndarray  # int64 seconds, ascending
    cat: np.ndarray
    query: np.ndarray  # query index into the pool


def build_requests(pool: Pool, users: Users, cfg: SimulateConfig, seed: int) -> Requests:
    """Who searches when for what: users by activity, categories by favourites, queries by popularity."""
    rng = rng_for(seed, cfg, 31)
    r, n_cat = cfg.n_requests, len(pool.cat_names)
    user = rng.choice(cfg.n_users, size=r, p=users.activity / users.activity.sum())
    ts = np.sort(cfg.start_ts + rng.integers(0, cfg.days * 86400, r)).astype(np.int64)
    fav_pick = np.floor(rng.random(r) * users.n_fav[user]).astype(np.int64)
    fav_cat = users.favourites[user, fav_pick]
    cat_pop = np.bincount(pool.query_cat, minlength=n_cat).astype(float)
    other_cat = rng.choice(n_cat, size=r, p=cat_pop / cat_pop.sum())
    cat = np.where(rng.random(r) < cfg.user_topic_affinity, fav_cat, other_cat)
    # query popularity inside a category: Zipf over a random order of its queries
    nq = len(pool.query_text)
    weight = 1.0 / (rng.permutation(nq) % max(1, nq) + 1.0) ** 0.8
    by_cat = np.lexsort((np.arange(nq), pool.query_cat))
    w_sorted = weight[by_cat]
    counts = np.bincount(pool.query_cat, minlength=n_cat)
    first = np.cumsum(counts) - counts
    cum = np.cumsum(w_sorted)
    before = np.r_[0.0, cum][first]  # total weight of the categories sorted before c
    total = np.r_[0.0, cum][first + counts] - before
    target = before[cat] + rng.random(r) * total[cat]
    pick = np.clip(np.searchsorted(cum, target, side="right"), first[cat], first[cat] + counts[cat] - 1)
    query = by_cat[pick]
    return Requests(user=user, ts=ts, cat=pool.query_cat[query], query=query)
