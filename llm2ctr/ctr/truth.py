"""The simulator's ground truth per feature row, for positive controls and truth-based metrics.

Only simulated logs have it (``{workdir}/data/ground_truth``); on a real log every column is NaN
and the study reports label-based metrics only. Columns (aligned with an events-format table):

- ``p_true``: the true click probability of the row (exposed log: at its position; the
  all-candidates set: at position 1);
- ``p_true_without_type`` / ``p_true_without_rsl``: the same with the query-type part of the
  relevance sensitivity, or the whole relevance term, removed (best achievable gain of a check);
- ``sens_true``, ``sens_without_type``, ``sens_category``: the request's relevance sensitivity,
  without its query-type part, and its category's mean.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

TRUTH_COLUMNS = ("p_true", "p_true_without_type", "p_true_without_rsl", "sens_true", "sens_without_type",
                 "sens_category")
_EVENT_SOURCES = {"p_true": "p_click", "p_true_without_type": "p_click_without_type",
                  "p_true_without_rsl": "p_click_without_rsl", "sens_true": "sensitivity"}
_CF_SOURCES = {"p_true": "p_click", "p_true_without_type": "p_click_without_type",
               "p_true_without_rsl": "p_click_without_rsl"}
_REQUEST_SOURCES = {"sens_true": "sensitivity", "sens_without_type": "sensitivity_without_type",
                    "sens_category": "sensitivity_category"}


def _col(table: pa.Table, name: str) -> np.ndarray | None:
    if name not in table.column_names:
        return None
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)


def _nan(n: int) -> dict[str, np.ndarray]:
    return {k: np.full(n, np.nan) for k in TRUTH_COLUMNS}


def row_truth(truth_dir: Path, table: pa.Table, counterfactual: bool) -> dict[str, np.ndarray]:
    """Truth columns for every row of ``table`` (events in data/events order, or the counterfactual)."""
    n = table.num_rows
    out = _nan(n)
    if not (truth_dir / "manifest.json").is_file():
        return out
    from llm2ctr.data.store import load_event_truth, load_request_truth

    # the counterfactual table carries its own truth columns; the exposed log's are beside it
    source, names = (table, _CF_SOURCES) if counterfactual else (load_event_truth(truth_dir), _EVENT_SOURCES)
    if source.num_rows == n:
        for key, src in names.items():
            v = _col(source, src)
            if v is not None:
                out[key] = v
    if (truth_dir / "requests").is_dir():
        requests = load_request_truth(truth_dir)
        where = pd.Index(requests.column("request_id").to_pylist()).get_indexer(table.column("request_id").to_pylist())
        ok = where >= 0
        for key, src in _REQUEST_SOURCES.items():
            v = _col(requests, src)
            if v is not None:
                out[key] = np.where(ok, v[np.maximum(where, 0)], np.nan)
    return out
