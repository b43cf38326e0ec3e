"""The whole behaviour log, for the long-history user tower: one copy per log, not per impression.

A feature row carries a user's last ``hist_len`` behaviours inline (20-50 x 3 columns). Hundreds
or thousands inline would multiply the feature files by the history length, so for the long
tower each row carries only ``[long_start, long_end)``: the range of its user's behaviours
strictly before the request in one log sorted by (user, ts) (``data.history.prior_behaviours``,
the same rule the data stage's history uses). The model gathers the last ``L`` of that range.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from llm2ctr.ctr.features import PairFeatures
from llm2ctr.data.history import behaviour_mask, prior_behaviours

BEHAVIOUR_FILE = "behaviours.safetensors"


def _col(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False)


def behaviour_log(events: pa.Table, pairs: PairFeatures, behaviour: str) -> tuple[dict[str, torch.Tensor], dict]:
    """(log tensors ``beh_pidx/beh_clicks/beh_rsl``, per-request ``{request_id: (start, end)}`` arrays).

    ``behaviour`` is ``data.history.behaviour`` (click | impression), so the long tower reads the
    same kind of behaviour as the truncated sequence it replaces.
    """
    user_code, _ = pd.factorize(pd.Series(_col(events, "user_id"), dtype=object), sort=True)
    ts = np.asarray(_col(events, "ts"), dtype=np.int64)
    click = np.asarray(_col(events, "click"), dtype=np.int64)
    rsl = np.nan_to_num(_col(events, "rsl").astype(np.float64)).astype(np.int64)
    b_rows, start, end = prior_behaviours(user_code, ts, behaviour_mask(click, behaviour), user_code, ts)
    pidx = pairs.pair_ids.get_indexer(np.asarray(_col(events, "pair_id"), dtype=object)[b_rows])
    tensors = {
        "beh_pidx": torch.from_numpy(pidx.astype(np.int64)),
        "beh_clicks": torch.from_numpy(click[b_rows]),
        "beh_rsl": torch.from_numpy(rsl[b_rows].clip(0, 4)),
    }
    requests = pd.Index(np.asarray(_col(events, "request_id"), dtype=object))
    first = ~requests.duplicated()
    return tensors, {"requests": requests[first], "start": start[first], "end": end[first]}


def row_ranges(table: pa.Table, ranges: dict) -> dict[str, np.ndarray]:
    """``long_start``/``long_end`` per row of an events-format table, joined on request_id
    (the all-candidates set shares the log's request ids; an unknown request gets an empty range)."""
    at = ranges["requests"].get_indexer(np.asarray(_col(table, "request_id"), dtype=object))
    ok = at >= 0
    start = np.where(ok, ranges["start"][np.maximum(at, 0)], 0)
    end = np.where(ok, ranges["end"][np.maximum(at, 0)], 0)
    return {"long_start": start.astype(np.int64), "long_end": end.astype(np.int64)}


def last_behaviours(start: torch.Tensor, end: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Log positions [B, length] of each row's last ``length`` behaviours (oldest first) and the mask.

    Right-aligned: the most recent behaviour is always the last column, padding on the left.
    """
    offsets = torch.arange(-length, 0, device=end.device)
    pos = end[:, None] + offsets[None, :]
    mask = pos >= start[:, None]
    return pos.clamp(min=0), mask
