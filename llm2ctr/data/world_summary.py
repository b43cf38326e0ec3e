"""Numbers that say whether a simulated (or imported) world looks as intended, for `data summary`.

Cold start is measured as in the paper's motivation: a request is cold when its user had fewer
than 3 behaviours (clicks) before it; a user is cold when they have fewer than 3 in the whole log.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

COLD_START_BEHAVIOURS = 3


def _np(t: pa.Table, name: str) -> np.ndarray:
    return t.column(name).to_numpy(zero_copy_only=False)


def _shares(values: np.ndarray) -> dict[str, float]:
    keys, counts = np.unique(values, return_counts=True)
    return {str(k): round(float(c) / max(1, len(values)), 4) for k, c in zip(keys, counts, strict=True)}


def pairs_summary(pairs: pa.Table) -> dict[str, Any]:
    rsl = np.asarray(pairs.column("rsl").fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    mix = _shares(np.where(rsl == 0, "null", rsl.astype(str)))
    return {"rows": pairs.num_rows, "queries": len(pairs.column("query").unique()),
            "items": len(pairs.column("item_id").unique()), "label_mix": mix,
            "splits": {k: int(v) for k, v in zip(*np.unique(_np(pairs, "split"), return_counts=True), strict=True)}}


def past_behaviours(user: np.ndarray, ts: np.ndarray, b_user: np.ndarray, b_ts: np.ndarray) -> np.ndarray:
    """For each (user, ts): how many behaviours (b_user, b_ts) that user had strictly before ts."""
    t0 = int(min(ts.min(initial=0), b_ts.min(initial=0)))
    span = int(max(ts.max(initial=0), b_ts.max(initial=0))) - t0 + 2
    key = np.sort(b_user.astype(np.int64) * span + (b_ts - t0))
    end = np.searchsorted(key, user.astype(np.int64) * span + (ts - t0), "left")
    return end - np.searchsorted(key, user.astype(np.int64) * span, "left")


def events_summary(events: pa.Table) -> dict[str, Any]:
    click = np.asarray(_np(events, "click"), dtype=np.float64)
    pos = np.asarray(_np(events, "position"), dtype=np.int64)
    rsl = np.asarray(events.column("rsl").fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    df = pd.DataFrame({"click": click, "pos": pos, "rsl": rsl})
    user, _ = pd.factorize(pd.Series(_np(events, "user_id"), dtype=object))
    req, _ = pd.factorize(pd.Series(_np(events, "request_id"), dtype=object))
    ts = np.asarray(_np(events, "ts"), dtype=np.int64)
    _, first = np.unique(req, return_index=True)
    clicked = click > 0
    past = past_behaviours(user[first], ts[first], user[clicked], ts[clicked])
    user_clicks = np.bincount(user[clicked], minlength=user.max() + 1 if len(user) else 0)
    out: dict[str, Any] = {
        "rows": events.num_rows, "requests": len(first), "users": int(user.max() + 1) if len(user) else 0,
        "clicks": int(click.sum()), "ctr": round(float(click.mean()), 5) if len(click) else 0.0,
        "ctr_by_position": {int(k): round(float(v), 5) for k, v in df.groupby("pos")["click"].mean().items()},
        "ctr_by_rsl": {int(k): round(float(v), 5) for k, v in df.groupby("rsl")["click"].mean().items()},
        "exposed_rsl4_share": round(float((rsl == 4).mean()), 4) if len(rsl) else 0.0,
        "cold_start_request_share": round(float((past < COLD_START_BEHAVIOURS).mean()), 4) if len(past) else 0.0,
        "cold_start_user_share": round(float((user_clicks < COLD_START_BEHAVIOURS).mean()), 4)
        if len(user_clicks) else 0.0,
    }
    if "split" in events.column_names:
        out["splits"] = {k: int(v) for k, v in zip(*np.unique(_np(events, "split"), return_counts=True), strict=True)}
    return out


def history_summary(history: pa.Table) -> dict[str, Any]:
    n_hist = np.asarray(_np(history, "n_hist"), dtype=np.int64)
    cross = np.diff(history.column("cross_pair_ids").combine_chunks().offsets.to_numpy())
    return {"requests": history.num_rows,
            "mean_hist_len": round(float(n_hist.mean()), 3) if len(n_hist) else 0.0,
            "empty_hist_share": round(float((n_hist == 0).mean()), 4) if len(n_hist) else 0.0,
            "mean_cross_len": round(float(cross.mean()), 3) if len(cross) else 0.0,
            "empty_cross_share": round(float((cross == 0).mean()), 4) if len(cross) else 0.0}


def summarize_tables(pairs: pa.Table | None, events: pa.Table | None,
                     history: pa.Table | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if pairs is not None:
        out["pairs"] = pairs_summary(pairs)
    if events is not None:
        out["events"] = events_summary(events)
    if history is not None:
        out["history"] = history_summary(history)
    return out


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable lines, one section per table."""
    lines = []
    for section, vals in summary.items():
        lines.append(f"[{section}]")
        for k, v in vals.items():
            if isinstance(v, dict):
                v = ", ".join(f"{a}: {b}" for a, b in v.items())
            lines.append(f"  {k:26s} {v}")
    return "\n".join(lines)
