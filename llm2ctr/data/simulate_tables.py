"""Turn a :class:`~llm2ctr.data.simulate.Simulation` into the events, counterfactual and truth tables.

Strings are built once per entity (request, user, query ...) and gathered with Arrow ``take``,
so no Python code runs per event row. In the classic world events and counterfactual carry no
new column (byte-identical to the simulator before worlds existed); the truth tables always do.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from llm2ctr.data.config import SimulateConfig
from llm2ctr.data.simulate import Simulation
from llm2ctr.data.simulate_world import SEGMENT_NAMES


def _ids(prefix: str, n: int) -> pa.Array:
    width = max(6, len(str(max(n - 1, 0))))
    return pa.array(np.char.mod(f"{prefix}%0{width}d", np.arange(n)).astype(object), pa.string())


def request_ids(n: int) -> pa.Array:
    return _ids("r", n)


def user_ids(n: int) -> pa.Array:
    return _ids("u", n)


def _split_of(sim: Simulation, cfg: SimulateConfig) -> pa.Array:
    test_from = cfg.start_ts + (cfg.days - cfg.test_days) * 86400
    return pa.array(np.where(sim.req.ts >= test_from, "test", "train").astype(object), pa.string())


def _rows_table(sim: Simulation, cfg: SimulateConfig, ri: np.ndarray, ci: np.ndarray) -> dict[str, Any]:
    """Columns shared by events and counterfactual for the (request, candidate) cells ri, ci."""
    pool, req, users = sim.pool, sim.req, sim.users
    pr = sim.cand[ri, ci]
    item = pool.item_idx[pr]
    ri_a = pa.array(ri)
    user = req.user[ri]
    pairs = pool.pairs
    price_bucket = pa.array([f"pb{k}" for k in range(10)]).take(pa.array(pool.price_bucket[item]))
    cols: dict[str, Any] = {
        "request_id": request_ids(len(req.user)).take(ri_a),
        "user_id": user_ids(len(users.activity)).take(pa.array(user)),
        "ts": pa.array(req.ts[ri], pa.int64()),
        "query": pa.array(pool.query_text).take(pa.array(req.query[ri])),
        "category": pa.array(pool.cat_names).take(pa.array(req.cat[ri])),
        "item_id": pairs.column("item_id").combine_chunks().take(pa.array(pr)),
        "pair_id": pairs.column("pair_id").combine_chunks().take(pa.array(pr)),
        "position": pa.array(sim.position[ri, ci], pa.int16()),
        "click": None,
        "rsl": pa.array(sim.rsl[ri, ci], pa.int8()),
        "f_user_id": user_ids(len(users.activity)).take(pa.array(user)),
        "f_user_segment": pa.array(list(SEGMENT_NAMES)).take(pa.array(users.segment[user])),
        "f_item_brand": pa.array(pool.brand_names).take(pa.array(pool.brand_idx[item])),
        "f_price_bucket": price_bucket,
        "f_category": pa.array(pool.cat_names).take(pa.array(req.cat[ri])),
        "n_log_price": pa.array(pool.log_price[item], pa.float32()),
        "n_item_popularity": pa.array(np.log1p(pool.popularity[item]), pa.float32()),
        "split": _split_of(sim, cfg).take(ri_a),
    }
    if cfg.world != "classic":  # exploration slates are the positive control for exposure debias
        cols["exploration"] = pa.array(sim.exploration[ri], pa.bool_())
    return cols


def exposed_cells(sim: Simulation) -> tuple[np.ndarray, np.ndarray]:
    """(request, candidate) cells of exposed items in events order: by request, then position."""
    ri, ci = np.nonzero(sim.exposed)
    order = np.lexsort((sim.position[ri, ci], ri))
    return ri[order], ci[order]


def events_table(sim: Simulation, cfg: SimulateConfig) -> pa.Table:
    """The impression log: one row per exposed item."""
    ri, ci = exposed_cells(sim)
    cols = _rows_table(sim, cfg, ri, ci)
    cols["click"] = pa.array(sim.click[ri, ci].astype(np.int8), pa.int8())
    return pa.table(cols)


def counterfactual_table(sim: Simulation, cfg: SimulateConfig) -> pa.Table:
    """Every candidate of every request; ``position`` is 1 (``p_click`` is the truth at position 1),
    ``exposed_position`` the real one (0 = not exposed), ``click`` drawn from ``p_click``."""
    ri, ci = np.nonzero(sim.valid)
    cols = _rows_table(sim, cfg, ri, ci)
    cols["position"] = pa.array(np.ones(len(ri), np.int16), pa.int16())
    cols["click"] = pa.array(sim.cf_click[ri, ci].astype(np.int8), pa.int8())
    cols["exposed"] = pa.array(sim.exposed[ri, ci], pa.bool_())
    cols["exposed_position"] = pa.array(sim.position[ri, ci], pa.int16())
    cols["p_click"] = pa.array(sim.p_pos1[ri, ci], pa.float32())
    if cfg.world != "classic":  # truth, not features (no f_/n_ prefix): oracle gains at position 1
        cols["p_click_without_type"] = pa.array(sim.p_pos1_without_type[ri, ci], pa.float32())
        cols["p_click_without_rsl"] = pa.array(sim.p_pos1_without_rsl[ri, ci], pa.float32())
    return pa.table(cols)


def users_table(sim: Simulation) -> pa.Table:
    """Hidden user traits. ``sensitivity`` is in the user's first favourite category."""
    u = sim.users
    n = len(u.activity)
    home = u.favourites[:, 0]
    offsets = np.r_[0, np.cumsum(u.n_fav)].astype(np.int32)
    fav_flat = u.favourites[np.arange(u.favourites.shape[1])[None, :] < u.n_fav[:, None]]
    fav_names = pa.array(sim.pool.cat_names).take(pa.array(fav_flat))
    return pa.table({
        "user_id": user_ids(n),
        "sensitivity": pa.array(np.maximum(0.0, u.cat_sens_mean[home] + u.sens_dev), pa.float32()),
        "sensitivity_dev": pa.array(u.sens_dev, pa.float32()),
        "activity": pa.array(u.activity, pa.float32()),
        "n_requests": pa.array(np.bincount(sim.req.user, minlength=n), pa.int32()),
        "segment": pa.array(list(SEGMENT_NAMES)).take(pa.array(u.segment)),
        "bias": pa.array(u.bias, pa.float32()),
        "home_category": pa.array(sim.pool.cat_names).take(pa.array(home)),
        "favourite_categories": pa.ListArray.from_arrays(pa.array(offsets), fav_names),
    })


def event_truth_table(sim: Simulation) -> pa.Table:
    """Per event, in events order: the true click probability and its parts."""
    ri, ci = exposed_cells(sim)
    return pa.table({
        "request_id": request_ids(len(sim.req.user)).take(pa.array(ri)),
        "pair_id": sim.pool.pairs.column("pair_id").combine_chunks().take(pa.array(sim.cand[ri, ci])),
        "p_click": pa.array(sim.p_exposed[ri, ci], pa.float32()),
        "p_click_pos1": pa.array(sim.p_pos1[ri, ci], pa.float32()),
        "examine": pa.array(sim.examine[ri, ci], pa.float32()),
        "sensitivity": pa.array(sim.sensitivity[ri], pa.float32()),
        "logit": pa.array(sim.z_wo_a[ri, ci] + sim.intercept, pa.float32()),
        # best achievable gains: type effect -> cold-start mining, relevance term -> debias / encoder
        "query_type": pa.array(sim.query_type[ri], pa.int32()),
        "type_effect": pa.array(sim.type_effect[ri], pa.float32()),
        "sensitivity_without_type": pa.array(sim.sensitivity_without_type[ri], pa.float32()),
        "sensitivity_category": pa.array(sim.sensitivity_category[ri], pa.float32()),
        "p_click_without_type": pa.array(sim.examine[ri, ci] * sim.p_pos1_without_type[ri, ci], pa.float32()),
        "p_click_without_rsl": pa.array(sim.examine[ri, ci] * sim.p_pos1_without_rsl[ri, ci], pa.float32()),
    })


def request_truth_table(sim: Simulation) -> pa.Table:
    """One row per request, in request-id order: who, when, which type, and the sensitivity parts."""
    n = len(sim.req.user)
    return pa.table({
        "request_id": request_ids(n),
        "user_id": user_ids(len(sim.users.activity)).take(pa.array(sim.req.user)),
        "day": pa.array(sim.day, pa.int32()),
        "query_type": pa.array(sim.query_type, pa.int32()),
        "type_effect": pa.array(sim.type_effect, pa.float32()),
        "sensitivity": pa.array(sim.sensitivity, pa.float32()),
        "sensitivity_without_type": pa.array(sim.sensitivity_without_type, pa.float32()),
        "sensitivity_category": pa.array(sim.sensitivity_category, pa.float32()),
        "exploration": pa.array(sim.exploration, pa.bool_()),
    })


def params(sim: Simulation, cfg: SimulateConfig) -> dict[str, Any]:
    """Scalar and per-category/brand/type parameters of the generating process."""
    classic = cfg.world == "classic"
    return {
        "intercept": float(sim.intercept),
        "category_sensitivity_mean": {str(c): float(v) for c, v in
                                      zip(sim.pool.cat_names, sim.users.cat_sens_mean, strict=True)},
        "brand_effect": {str(b): float(v) for b, v in
                         zip(sim.pool.brand_names, sim.pool.brand_effect, strict=True)},
        "segments": list(SEGMENT_NAMES),
        "n_unlabelled_pairs_skipped": sim.pool.n_unlabelled,
        "queries": len(sim.pool.query_text),
        "world": cfg.world,
        "queries_per_type": None if classic else cfg.queries_per_type,
        "n_types": sim.pool.n_types,
        "type_sensitivity_sd": 0.0 if classic else cfg.type_sensitivity_sd,
        "type_drift_sd": 0.0 if classic else cfg.type_drift_sd,
        "random_slate_share": 0.0 if classic else cfg.random_slate_share,
        "exploration_requests": int(sim.exploration.sum()),
        "type_effect_static": [float(v) for v in sim.type_static],  # indexed by query_type
    }
