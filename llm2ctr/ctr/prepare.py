"""Build (once) the ranker's feature files and text caches from the data and student artifacts.

``{workdir}/ctr/features/``: ``train.arrow`` (rows in a seeded random order), ``valid.arrow`` (the
last ``valid_share`` of the training window by time: temperature scaling and nothing else),
``test.arrow`` (exposed test impressions), ``cf_test.arrow`` (the counterfactual all-candidates
set's test requests), ``spec.json`` and ``text_<source>.safetensors`` caches. A manifest with input
hashes makes a re-run skip the work when nothing changed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import torch
from safetensors.torch import load_file, save_file

from llm2ctr.artifacts import atomic_dir, is_up_to_date, read_manifest, write_manifest
from llm2ctr.ctr import artifact as ctr_artifact
from llm2ctr.ctr.debias import matching_lower_pairs
from llm2ctr.ctr.features import (
    FeatureReader,
    FeatureSpec,
    HistoryIndex,
    PairFeatures,
    build_pair_features,
    make_spec,
    write_features,
)
from llm2ctr.ctr.hybrid_samples import ITEM_FILE, hybrid_negatives, item_popularity, pair_item_inputs
from llm2ctr.ctr.inputs import PairContext
from llm2ctr.ctr.long_history import BEHAVIOUR_FILE, behaviour_log, row_ranges
from llm2ctr.ctr.truth import row_truth
from llm2ctr.data.store import load_pairs, load_table
from llm2ctr.errors import InputError

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    directory: Path
    spec: FeatureSpec
    pairs: PairFeatures
    counts: dict[str, int]

    def reader(self, name: str) -> FeatureReader:
        return FeatureReader(self.directory / f"{name}.arrow")

    def has(self, name: str) -> bool:
        return (self.directory / f"{name}.arrow").is_file()


def data_inputs(cfg) -> dict[str, Path]:
    d = cfg.stage_dir("data")
    inputs = {"pairs": d / "pairs", "events": d / "events", "history": d / "history"}
    for name in ("pairs", "events", "history"):
        read_manifest(inputs[name])  # clear error naming the missing artifact
    for optional in ("counterfactual", "ground_truth"):
        if (d / optional / "manifest.json").is_file():
            inputs[optional] = d / optional
    return inputs


def _feature_config(cfg) -> dict:
    c = cfg.ctr
    return {
        "version": 3,  # 2: truth and request columns, exploration slates held out; 3: long history, hybrid samples
        "behaviour": cfg.data.history.behaviour, "hybrid_negatives": c.hybrid_negatives,
        "hash_buckets": c.hash_buckets, "position_feature": c.position_feature, "shard_rows": c.shard_rows,
        "valid_share": c.valid_share, "seed": c.seed, "bm25": [c.bm25_k1, c.bm25_b],
        "hist_len": cfg.data.history.max_user_history, "cross_len": cfg.data.history.cross_user_k,
    }


def _split_mask(table: pa.Table, value: str, where: str) -> np.ndarray:
    if "split" not in table.column_names:
        raise InputError(f"{where}: column 'split' is missing; expected train/test per row (data simulate writes it)")
    return pc.equal(table.column("split"), value).to_numpy(zero_copy_only=False)


def prepare(cfg, force: bool = False) -> Prepared:
    """Write the feature files unless an up-to-date set exists; return a handle to them."""
    inputs = data_inputs(cfg)
    out = ctr_artifact.features_dir(cfg)
    fcfg = _feature_config(cfg)
    pairs_tab = load_pairs(inputs["pairs"])
    pairs = build_pair_features(pairs_tab, cfg.ctr.hash_buckets, cfg.ctr.bm25_k1, cfg.ctr.bm25_b)
    if not force and is_up_to_date(out, ctr_artifact.KIND, fcfg, inputs):
        m = read_manifest(out, ctr_artifact.KIND)
        return Prepared(out, FeatureSpec.from_json((out / "spec.json").read_text()), pairs, m["counts"])
    events = load_table(inputs["events"], "events")
    history = load_table(inputs["history"], "history")
    hist = HistoryIndex(history, pairs, str(inputs["history"]))
    where = str(inputs["events"])
    train_mask = _split_mask(events, "train", where)
    test_mask = _split_mask(events, "test", where)
    ts = events.column("ts").to_numpy()
    train_idx = np.flatnonzero(train_mask)
    if train_idx.size == 0 or not test_mask.any():
        raise InputError(f"{where}: need rows with split=train and split=test; got {train_idx.size} train, {int(test_mask.sum())} test")
    cut = np.quantile(ts[train_idx], 1.0 - cfg.ctr.valid_share) if cfg.ctr.valid_share > 0 else np.inf
    valid_idx = train_idx[ts[train_idx] >= cut]
    fit_idx = train_idx[ts[train_idx] < cut]
    exploration = _exploration_mask(events)
    spec = make_spec(events.take(pa.array(fit_idx[~exploration[fit_idx]])), cfg.ctr.hash_buckets,
                     fcfg["hist_len"], fcfg["cross_len"], cfg.ctr.position_feature)
    rng = np.random.default_rng(cfg.ctr.seed)
    counts: dict[str, int] = {}
    cf = load_table(inputs["counterfactual"], "events") if "counterfactual" in inputs else None
    beh, ranges = behaviour_log(events, pairs, cfg.data.history.behaviour)
    pop, tail_cut = item_popularity(events, fit_idx[~exploration[fit_idx]], pairs)
    unexposed = _unexposed_training_candidates(cf)
    extra = {**_extra_columns(cfg, events, counterfactual=False), **row_ranges(events, ranges),
             **_popularity_columns(events, pairs, pop, tail_cut),
             "hyb_pidx": hybrid_negatives(events, unexposed, pairs, cfg.ctr.hybrid_negatives, cfg.ctr.seed)}
    with atomic_dir(out) as tmp:
        sr = cfg.ctr.shard_rows
        shuffled = rng.permutation(fit_idx)

        def write(name: str, table: pa.Table, idx: np.ndarray, where_: str, cols: dict[str, np.ndarray]) -> None:
            counts[name] = write_features(tmp / f"{name}.arrow", table, spec, pairs, hist, sr, idx, where_, cols)

        write("train", events, shuffled[~exploration[shuffled]], where, extra)
        if exploration.any():  # the positive control of exposure debias also trains on the random slates
            write("train_exploration", events, shuffled, where, extra)
        write("valid", events, valid_idx[~exploration[valid_idx]], where, extra)
        test_idx = np.flatnonzero(test_mask & ~exploration)
        write("test", events, test_idx, where, extra)
        if cf is not None:
            cf_where = str(inputs["counterfactual"])
            cf_idx = np.flatnonzero(_split_mask(cf, "test", cf_where) & ~_exploration_mask(cf))
            write("cf_test", cf, cf_idx, cf_where, {**_extra_columns(cfg, cf, counterfactual=True),
                                                    **row_ranges(cf, ranges), **_popularity_columns(cf, pairs, pop, tail_cut)})
        counts["exploration_rows_excluded"] = int(exploration.sum())
        counts["behaviours"] = int(len(beh["beh_pidx"]))
        counts["unexposed_candidates"] = 0 if unexposed is None else int(unexposed.num_rows)
        counts["clicks_with_hybrid_negatives"] = int((extra["hyb_pidx"][:, :1] >= 0).sum())
        save_file(beh, str(tmp / BEHAVIOUR_FILE))
        save_file(pair_item_inputs([t for t in (events, cf) if t is not None], spec, pairs), str(tmp / ITEM_FILE))
        (tmp / "spec.json").write_text(spec.to_json())
        write_manifest(tmp, kind=ctr_artifact.KIND, stage=ctr_artifact.STAGE, config=fcfg, inputs=inputs, counts=counts, role="features")
    log.info("ranker features: %s", counts)
    return Prepared(out, spec, pairs, counts)


def _unexposed_training_candidates(cf: pa.Table | None) -> pa.Table | None:
    """The training window's candidates that were not shown (HCCP's hybrid negatives), if any."""
    if cf is None or "exposed" not in cf.column_names:
        return None
    exposed = np.asarray(cf.column("exposed").fill_null(True).to_numpy(zero_copy_only=False), dtype=bool)
    keep = ~exposed & _split_mask(cf, "train", "counterfactual") & ~_exploration_mask(cf)
    return cf.filter(pa.array(keep))


def _popularity_columns(table: pa.Table, pairs: PairFeatures, pop: np.ndarray, tail_cut: float) -> dict[str, np.ndarray]:
    """Training impressions of each row's item and whether it is in the long tail (bottom quintile)."""
    idx = pairs.pair_ids.get_indexer(table.column("pair_id").to_pylist())
    row_pop = np.where(idx >= 0, pop[np.maximum(idx, 0)], 0)
    return {"item_pop": row_pop.astype(np.int64), "long_tail": (row_pop <= tail_cut).astype(np.int8)}


def _exploration_mask(table: pa.Table) -> np.ndarray:
    """Rows of the simulator's uniformly random slates (the debias control); none on a real log."""
    if "exploration" not in table.column_names:
        return np.zeros(table.num_rows, dtype=bool)
    return np.asarray(table.column("exploration").fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _extra_columns(cfg, table: pa.Table, counterfactual: bool) -> dict[str, np.ndarray]:
    """Per-row request code and simulator truth (NaN without ground truth) stored beside the features."""
    codes, _ = pd.factorize(pd.Series(table.column("request_id").to_pylist(), dtype=object))
    truth = row_truth(cfg.stage_dir("data", "ground_truth"), table, counterfactual)
    return {"request_code": codes.astype(np.int64), **{k: v.astype(np.float32) for k, v in truth.items()}}


def student_dir(cfg) -> Path:
    from llm2ctr.student.artifact import model_dir

    return model_dir(cfg)


def text_cache(cfg, prepared: Prepared, source: str) -> dict[str, torch.Tensor]:
    """Tokens + cached embeddings of every pair and query from the student (``source`` = distilled
    or random); computed once per student version and stored next to the features."""
    from llm2ctr.ctr.text import text_tensors
    from llm2ctr.student.artifact import load_encoder

    folder = student_dir(cfg)
    m = read_manifest(folder)
    seed = cfg.ctr.seed if source == "random" else 0  # only the random encoder depends on the seed
    key = f"{m['content_hash'][:16]}-{cfg.ctr.text_max_length}-{seed}-{prepared.pairs.n}"
    path = prepared.directory / (f"text_{source}.safetensors" if source != "random" else f"text_random_{seed}.safetensors")
    if path.is_file():
        from safetensors import safe_open

        with safe_open(str(path), "pt") as fh:
            if (fh.metadata() or {}).get("key") == key:
                return load_file(str(path))
    model, tok = load_encoder(folder, random_init=(source == "random"), seed=cfg.ctr.seed)
    max_length = min(cfg.ctr.text_max_length, model.bert.config.max_position_embeddings)
    if max_length < cfg.ctr.text_max_length:
        log.info("ctr.text_max_length=%d is beyond the student's %d positions; pairs are cut at %d",
                 cfg.ctr.text_max_length, max_length, max_length)
    tensors = text_tensors(model, tok, prepared.pairs, max_length, cfg.ctr.encode_batch_size)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata={"key": key})
    tmp.replace(path)
    return tensors


def make_context(prepared: Prepared, text: dict[str, torch.Tensor] | None, text_dim: int = 8) -> PairContext:
    """Per-pair buffers for the models; without text, zero placeholders (never read by baselines)."""
    p = prepared.pairs
    tensors = {
        "lexical": torch.from_numpy(p.lexical),
        "pair_query": torch.from_numpy(p.query_index),
        "item_code": torch.from_numpy(p.item_code),
        "lower_pairs": torch.from_numpy(matching_lower_pairs(p.query_index, p.category, p.rsl)),
    }
    for name in (BEHAVIOUR_FILE, ITEM_FILE):  # long-history log and per-pair item inputs (HCCP)
        if (prepared.directory / name).is_file():
            tensors.update(load_file(str(prepared.directory / name)))
    if text is None:
        tensors["pair_emb"] = torch.zeros((p.n, text_dim))
        tensors["query_emb"] = torch.zeros((len(p.unique_queries), text_dim))
    else:
        tensors.update(text)
    return PairContext(tensors)


