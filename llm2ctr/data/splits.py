"""Train/valid/test splits that cannot leak.

Pairs are split by query (a query's pairs all land in one split, so a model is never tested on a
query it trained on); events by user, by request, at random, or by time (train on the past, test
on the last ``test_share`` of the time range -- the paper trains on 7 days and tests on the next 2).
Group splits shuffle the *sorted* distinct keys with a seeded generator, so the result depends
only on the set of keys and the seed, not on row order, and split sizes are exact.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from llm2ctr.errors import UserError

log = logging.getLogger(__name__)

PAIR_METHODS = ("query", "random")
EVENT_METHODS = ("random", "user", "request", "time")
_NAMES = np.array(["train", "valid", "test"], dtype=object)


def _check_shares(valid_share: float, test_share: float) -> None:
    if not (0 <= valid_share < 1 and 0 <= test_share < 1 and valid_share + test_share < 1):
        raise UserError(
            f"split shares valid_share={valid_share}, test_share={test_share}: each must be in [0, 1) "
            "and their sum below 1 (the rest is train)"
        )


def _levels_for(n: int, valid_share: float, test_share: float, rng: np.random.Generator) -> np.ndarray:
    """0/1/2 (train/valid/test) for ``n`` units in a random order with exact sizes."""
    n_test = int(round(n * test_share))
    n_valid = int(round(n * valid_share))
    levels = np.zeros(n, dtype=np.int8)
    order = rng.permutation(n)
    levels[order[:n_test]] = 2
    levels[order[n_test:n_test + n_valid]] = 1
    return levels


def _group_levels(keys: pa.ChunkedArray | pa.Array, valid_share: float, test_share: float, seed: int) -> np.ndarray:
    """One split level per row such that rows with the same key share a level."""
    enc = pc.dictionary_encode(keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys)
    indices = enc.indices.to_numpy(zero_copy_only=False)
    rank = np.empty(len(enc.dictionary), dtype=np.int64)
    rank[pc.sort_indices(enc.dictionary).to_numpy()] = np.arange(len(enc.dictionary))
    per_key = _levels_for(len(enc.dictionary), valid_share, test_share, np.random.default_rng(seed))
    return per_key[rank][indices]  # the level of key k is drawn at its sorted rank


def _with_split(table: pa.Table, levels: np.ndarray) -> pa.Table:
    col = pa.array(_NAMES[levels], type=pa.string())
    if "split" in table.column_names:
        return table.set_column(table.column_names.index("split"), "split", col)
    return table.append_column("split", col)


def assign_pair_splits(
    table: pa.Table, method: str = "query", valid_share: float = 0.1, test_share: float = 0.1, seed: int = 0
) -> pa.Table:
    """Set ``split`` on a pairs table: by query (no query in two splits) or per row at random."""
    _check_shares(valid_share, test_share)
    if method == "query":
        levels = _group_levels(table.column("query"), valid_share, test_share, seed)
    elif method == "random":
        levels = _levels_for(table.num_rows, valid_share, test_share, np.random.default_rng(seed))
    else:
        raise UserError(f"unknown pairs split method '{method}'; expected one of {', '.join(PAIR_METHODS)}")
    return _with_split(table, levels)


def assign_event_splits(
    table: pa.Table, method: str = "time", valid_share: float = 0.0, test_share: float = 2 / 9, seed: int = 0
) -> pa.Table:
    """Set ``split`` on an events table by time, user, request or at random (per event)."""
    _check_shares(valid_share, test_share)
    if method == "time":
        ts = table.column("ts").to_numpy().astype(np.int64)
        lo, hi = int(ts.min()), int(ts.max()) + 1
        test_cut = lo + (1.0 - test_share) * (hi - lo)
        valid_cut = lo + (1.0 - test_share - valid_share) * (hi - lo)
        levels = np.where(ts >= test_cut, 2, np.where(ts >= valid_cut, 1, 0)).astype(np.int8)
        log.info("time split: valid from ts %d, test from ts %d (range %d..%d)", valid_cut, test_cut, lo, hi - 1)
    elif method in ("user", "request"):
        levels = _group_levels(table.column(f"{method}_id"), valid_share, test_share, seed)
    elif method == "random":
        levels = _levels_for(table.num_rows, valid_share, test_share, np.random.default_rng(seed))
    else:
        raise UserError(f"unknown events split method '{method}'; expected one of {', '.join(EVENT_METHODS)}")
    return _with_split(table, levels)


def split_counts(table: pa.Table) -> dict[str, int]:
    vc = pc.value_counts(table.column("split")).to_pylist()
    return {d["values"]: int(d["counts"]) for d in vc}


def run_split(cfg, kind: str = "pairs", method: str | None = None, path: str | Path | None = None) -> dict:
    """Re-split a saved pairs/events artifact in place (atomic); returns the split sizes.

    ``cfg`` is the whole Config: pairs use ``data.split.{method,valid_share,test_share,seed}``,
    events ``data.split.event_{method,valid_share,test_share}`` and ``data.split.seed``.
    """
    from llm2ctr.artifacts import read_manifest
    from llm2ctr.data.store import load_table, save_table

    scfg = cfg.data.split
    if kind not in ("pairs", "events"):
        raise UserError(f"--kind {kind}: expected pairs or events")
    directory = Path(path) if path else cfg.stage_dir("data", kind)
    old = read_manifest(directory, kind)
    table = load_table(directory, kind)
    if kind == "pairs":
        method = method or scfg.method
        shares = (scfg.valid_share, scfg.test_share)
        table = assign_pair_splits(table, method, *shares, seed=scfg.seed)
    else:
        method = method or scfg.event_method
        shares = (scfg.event_valid_share, scfg.event_test_share)
        table = assign_event_splits(table, method, *shares, seed=scfg.seed)
    counts = split_counts(table)
    reserved = {"kind", "schema_version", "stage", "package_version", "created", "config", "config_hash",
                "inputs", "content_hash", "counts", "split"}
    extra = {k: v for k, v in old.items() if k not in reserved}
    split_info = {"method": method, "valid_share": shares[0], "test_share": shares[1], "seed": scfg.seed}
    save_table(table, directory, kind=kind, stage=old.get("stage", "data"), config=old.get("config"),
               counts={**old.get("counts", {}), **{f"split_{k}": v for k, v in counts.items()}},
               split=split_info, **extra)
    log.info("%s: re-split by %s: %s", directory, method, counts)
    return {"path": str(directory), "kind": kind, **split_info, "counts": counts}
