"""Click simulator: exposure policy, position bias and the true click model over any pairs table.

Why: no public log has query text + graded relevance + users + clicks, so we generate one whose
generating process is known (DESIGN.md section 5) and write the truth beside it.

Per request (users, categories and queries come from ``simulate_world``):

- candidates: the query's labelled pairs, at most ``candidates_per_request`` (a seeded subset);
- exposure: ``slate = min(slate_size, candidates)`` items; each slot wants an rsl-4 item with
  probability ``exposed_rsl4_share``; wanted rsl-4 slots are filled from the rsl-4 candidates (by
  attractiveness + Gumbel noise), the rest from rsl 3 > 2 > 1 candidates. When a query has too
  few rsl-4 candidates the slate takes lower levels (its rsl-4 share falls); when it has too few
  others, more rsl-4 items fill the slate. The realised share is in the summary;
- positions: exposed items ordered by ``0.8·rsl + 0.5·attractiveness + Gumbel`` (better items
  tend to be higher, which confounds position and relevance as in a real log);
- clicks: ``P(click) = examine(pos) · sigmoid(z)`` with ``examine(pos) = 1 / pos^power`` and
  ``z = a + s_uc·g(rsl) + attract_i + brand_b + bias_u + slope_seg(u)·(log price_i − mean log price
  of the request's candidates)``, ``g(rsl) = (rsl − 2.5) / 1.5`` and the user's sensitivity in
  the request's category ``s_uc = max(0, mean_c + dev_u)``. The intercept ``a`` is solved by
  bisection so the mean exposed P(click) equals ``target_ctr``.

World ``query_types`` (the default; ``classic`` is the above, byte-identical to before the worlds
existed) adds, each from its own rng stream so the classic draws are unchanged:

- fine-grained query types (``query_types.py``) with a sensitivity effect, static plus an optional
  daily random walk: ``s = max(0, mean_c + type_t + drift_t(day) + dev_u)``;
- exploration: a ``random_slate_share`` of requests gets a uniformly random slate of the same size
  in uniformly random order (flag ``exploration``), the positive control for exposure debias.

The counterfactual table holds every candidate of every request, exposed or not, with
``p_click = sigmoid(z)`` (the true probability at position 1) and a click drawn from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from scipy.special import expit

from llm2ctr.data.config import SimulateConfig
from llm2ctr.data.query_types import type_effects
from llm2ctr.data.simulate_world import (
    SEGMENT_NAMES,
    Pool,
    Requests,
    Users,
    build_pool,
    build_requests,
    build_users,
    rng_for,
)
from llm2ctr.errors import ConfigError

WORLDS = ("query_types", "classic")


def check_config(cfg: SimulateConfig) -> None:
    """Refuse settings that cannot simulate, naming the key and what is expected."""
    checks = [
        (cfg.n_users >= 1, "n_users", ">= 1"), (cfg.n_requests >= 1, "n_requests", ">= 1"),
        (cfg.days >= 1, "days", ">= 1"), (0 <= cfg.test_days < cfg.days, "test_days", "0 <= test_days < days"),
        (cfg.slate_size >= 1, "slate_size", ">= 1"),
        (cfg.candidates_per_request >= 1, "candidates_per_request", ">= 1"),
        (0.0 <= cfg.exposed_rsl4_share <= 1.0, "exposed_rsl4_share", "0..1"),
        (0.0 < cfg.target_ctr < 1.0, "target_ctr", "0 < x < 1"),
        (cfg.activity_alpha > 0, "activity_alpha", "> 0"),
        (0.0 <= cfg.user_topic_affinity <= 1.0, "user_topic_affinity", "0..1"),
        (len(cfg.sensitivity_mean_range) == 2, "sensitivity_mean_range", "[low, high]"),
        (len(cfg.price_slope_by_segment) == len(SEGMENT_NAMES), "price_slope_by_segment",
         f"{len(SEGMENT_NAMES)} numbers ({', '.join(SEGMENT_NAMES)})"),
        (cfg.max_favourite_categories >= 1, "max_favourite_categories", ">= 1"),
        (cfg.world in WORLDS, "world", " or ".join(repr(w) for w in WORLDS)),
        (cfg.queries_per_type >= 1.0, "queries_per_type", ">= 1"),
        (cfg.type_sensitivity_sd >= 0.0, "type_sensitivity_sd", ">= 0"),
        (cfg.type_drift_sd >= 0.0, "type_drift_sd", ">= 0"),
        (0.0 <= cfg.random_slate_share <= 1.0, "random_slate_share", "0..1"),
        (len(cfg.appeal_by_level) == 4 and min(cfg.appeal_by_level) >= 0, "appeal_by_level",
         "4 multipliers >= 0 (rsl 1, 2, 3, 4)"),
        (cfg.exposure_ctr_weight >= 0, "exposure_ctr_weight", ">= 0"),
    ]
    for ok, key, expected in checks:
        if not ok:
            raise ConfigError(f"data.simulate.{key}={getattr(cfg, key)!r}: expected {expected}")


def _row_rank(key: np.ndarray) -> np.ndarray:
    """0-based descending rank of each entry within its row (ties broken by column order)."""
    order = np.argsort(-key, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(key.shape[1])[None, :].repeat(key.shape[0], 0), axis=1)
    return rank


@dataclass
class Simulation:
    """Everything the tables are built from; arrays are [n_requests, C] unless noted."""

    pool: Pool
    users: Users
    req: Requests
    cand: np.ndarray  # pair row index, -1 padding
    valid: np.ndarray
    rsl: np.ndarray
    exposed: np.ndarray
    position: np.ndarray  # 1-based, 0 where not exposed
    z_wo_a: np.ndarray  # true logit without the intercept
    sensitivity: np.ndarray  # per request
    intercept: float
    examine: np.ndarray  # 1 / pos^power (0 where not exposed)
    p_exposed: np.ndarray  # examine(pos) * sigmoid(z) (0 where not exposed)
    p_pos1: np.ndarray  # sigmoid(z)
    click: np.ndarray  # clicks of exposed items
    cf_click: np.ndarray  # counterfactual clicks drawn from p_pos1
    # ground truth for each mechanism's best achievable gain (query_types world; neutral in classic)
    exploration: np.ndarray  # per request: shown a uniformly random slate
    day: np.ndarray  # per request: (ts - start_ts) // 86400
    query_type: np.ndarray  # per request (-1 in classic)
    type_effect: np.ndarray  # per request: static type effect + that day's drift (0 in classic)
    type_static: np.ndarray  # per type
    sensitivity_without_type: np.ndarray  # per request: max(0, mean_c + dev_u)
    sensitivity_category: np.ndarray  # per request: mean_c
    p_pos1_without_type: np.ndarray  # sigmoid(z with s replaced by sensitivity_without_type)
    p_pos1_without_rsl: np.ndarray  # sigmoid(z without the s * g(rsl) term)


def _calibrate(z: np.ndarray, examine: np.ndarray, target: float) -> float:
    """Intercept a with mean(examine * sigmoid(z + a)) = target (bisection; mean is monotone in a)."""
    if examine.mean() <= target:
        raise ConfigError(f"data.simulate.target_ctr={target}: unreachable, the mean examination "
                         f"probability is only {examine.mean():.4f}; lower position_bias_power or target_ctr")
    lo, hi = -30.0, 30.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if float(np.mean(examine * expit(z + mid))) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def simulate(pairs: pa.Table, cfg: SimulateConfig, seed: int = 0, source: str = "pairs") -> Simulation:
    """Run the generating process; same pairs, config and seed give bit-identical arrays."""
    check_config(cfg)
    pool = build_pool(pairs, cfg, seed, source)
    users = build_users(pool, cfg, seed)
    req = build_requests(pool, users, cfg, seed)
    rng = rng_for(seed, cfg, 41)
    cand = pool.cand[req.query]
    valid = cand >= 0
    safe = np.where(valid, cand, 0)
    rsl = np.where(valid, pool.rsl[safe], 0).astype(np.int8)
    item = pool.item_idx[safe]
    attract = np.where(valid, pool.attract[item], 0.0)

    types_on = cfg.world == "query_types"
    n_cand = valid.sum(1)
    # true click model
    sens_cat = users.cat_sens_mean[req.cat]
    sens_wo_type = np.maximum(0.0, sens_cat + users.sens_dev[req.user])  # the classic sensitivity
    day = np.minimum((req.ts - cfg.start_ts) // 86400, cfg.days - 1).astype(np.int64)
    if types_on:
        type_static, drift = type_effects(pool.n_types, cfg, rng_for(seed, cfg, 52), rng_for(seed, cfg, 53))
        qtype = pool.query_type[req.query]
        type_eff = type_static[qtype] + drift[qtype, day]
        sens = np.maximum(0.0, sens_cat + type_eff + users.sens_dev[req.user])
    else:
        type_static, qtype = np.zeros(0), np.full(len(req.user), -1, dtype=np.int64)
        type_eff, sens = np.zeros(len(req.user)), sens_wo_type
    g_rsl = (rsl.astype(np.float64) - 2.5) / 1.5
    lp = np.where(valid, pool.log_price[item], 0.0)
    lp_centered = lp - (lp.sum(1) / np.maximum(n_cand, 1))[:, None]
    slope = np.asarray(cfg.price_slope_by_segment, dtype=np.float64)[users.segment[req.user]]
    brand = pool.brand_effect[pool.brand_idx[item]]
    bias = users.bias[req.user][:, None]

    # query_types world: how much an item's appeal (attractiveness + brand) counts depends on its
    # relevance (an irrelevant item is not clicked for being popular); classic: it always counts fully
    if types_on:
        appeal = (attract + brand) * np.r_[1.0, np.asarray(cfg.appeal_by_level, dtype=np.float64)][rsl]

        def logit(s: np.ndarray) -> np.ndarray:  # one expression, so every variant rounds alike
            return s[:, None] * g_rsl + appeal + bias + slope[:, None] * lp_centered
    else:
        def logit(s: np.ndarray) -> np.ndarray:  # the classic expression, bit for bit
            return s[:, None] * g_rsl + attract + brand + bias + slope[:, None] * lp_centered

    z = logit(sens)

    # exposure policy
    slate = np.minimum(cfg.slate_size, n_cand)
    is4 = valid & (rsl == 4)
    other = valid & (rsl < 4)
    avail4, avail_o = is4.sum(1), other.sum(1)
    want4 = rng.binomial(slate, cfg.exposed_rsl4_share)
    n4 = np.minimum(want4, avail4)
    n_o = np.minimum(slate - n4, avail_o)
    n4 = np.minimum(avail4, slate - n_o)
    g = rng.gumbel(size=cand.shape)
    if types_on and cfg.exposure_ctr_weight:  # the upstream ranker also scored each candidate's click logit
        key4 = np.where(is4, attract + g + cfg.exposure_ctr_weight * z, -np.inf)
        key_o = np.where(other, rsl + 0.5 * g + cfg.exposure_ctr_weight * z, -np.inf)
    else:
        key4 = np.where(is4, attract + g, -np.inf)
        key_o = np.where(other, rsl + 0.5 * g, -np.inf)
    exposed = (is4 & (_row_rank(key4) < n4[:, None])) | (other & (_row_rank(key_o) < n_o[:, None]))
    rank_key = np.where(exposed, 0.8 * rsl + 0.5 * attract + rng.gumbel(size=cand.shape), -np.inf)
    position = np.where(exposed, _row_rank(rank_key) + 1, 0).astype(np.int16)
    explore = np.zeros(len(cand), dtype=bool)
    if types_on:
        explore = _explore(exposed, position, valid, slate, cfg.random_slate_share, rng_for(seed, cfg, 54))

    examine = np.where(exposed, 1.0 / np.maximum(position, 1).astype(np.float64) ** cfg.position_bias_power, 0.0)
    a = _calibrate(z[exposed], examine[exposed], cfg.target_ctr)
    p1 = np.where(valid, expit(z + a), 0.0)
    p = examine * p1
    u = rng.random(cand.shape)
    click = exposed & (u < p)
    cf_click = valid & (rng.random(cand.shape) < p1)
    p1_wo_type = np.where(valid, expit(logit(sens_wo_type) + a), 0.0) if types_on else p1
    p1_wo_rsl = np.where(valid, expit(attract + brand + bias + slope[:, None] * lp_centered + a), 0.0)  # no relevance at all
    return Simulation(pool=pool, users=users, req=req, cand=cand, valid=valid, rsl=rsl, exposed=exposed,
                      position=position, z_wo_a=z, sensitivity=sens, intercept=a, examine=examine, p_exposed=p, p_pos1=p1,
                      click=click, cf_click=cf_click, exploration=explore, day=day, query_type=qtype,
                      type_effect=type_eff, type_static=type_static, sensitivity_without_type=sens_wo_type,
                      sensitivity_category=sens_cat, p_pos1_without_type=p1_wo_type, p_pos1_without_rsl=p1_wo_rsl)


def _explore(exposed: np.ndarray, position: np.ndarray, valid: np.ndarray, slate: np.ndarray, share: float,
             rng: np.random.Generator) -> np.ndarray:
    """Give a ``share`` of requests a uniformly random slate of the same size in uniformly random
    order, in place; returns the per-request flag. Unbiased exposure: the debias positive control."""
    explore = rng.random(len(exposed)) < share
    rows = np.flatnonzero(explore)
    v = valid[rows]
    chosen = v & (_row_rank(np.where(v, rng.random(v.shape), -np.inf)) < slate[rows, None])
    order = _row_rank(np.where(chosen, rng.random(v.shape), -np.inf))
    exposed[rows] = chosen
    position[rows] = np.where(chosen, order + 1, 0)
    return explore
