"""Entry points of the data world (synth, simulate, history, summary) used by the CLI and the pipeline.

Each takes the whole :class:`~llm2ctr.config.Config`, writes its artifacts atomically under
``cfg.workdir`` and returns a small summary dict. The jobs run in seconds to minutes, so a killed
job simply re-runs: artifacts are renamed into place only when complete, and the same config and
seed give byte-identical tables.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from tqdm.auto import tqdm

from llm2ctr.artifacts import atomic_dir, atomic_write_json, write_manifest
from llm2ctr.data.store import load_event_truth as load_event_truth
from llm2ctr.data.store import load_events, load_pairs, load_table, save_table
from llm2ctr.data.store import load_ground_truth as load_ground_truth
from llm2ctr.data.store import load_request_truth as load_request_truth  # load_*_truth: moved to store.py

if TYPE_CHECKING:
    from llm2ctr.config import Config

log = logging.getLogger(__name__)


def _mix(rsl: pa.ChunkedArray) -> dict[str, float]:
    vals = np.asarray(pa.chunked_array(rsl).fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    counts = np.bincount(vals, minlength=5)
    n = max(1, len(vals))
    return {str(k): round(float(counts[k]) / n, 4) for k in (4, 3, 2, 1)} | {"null": round(float(counts[0]) / n, 4)}


def run_synth(cfg: Config) -> dict[str, Any]:
    """Write the synthetic catalogue ({workdir}/data/catalogue) and labelled pairs ({workdir}/data/pairs)."""
    from llm2ctr.data.synth import synthesize

    steps = tqdm(total=2, desc="synth", unit="step", leave=False)
    catalogue, pairs = synthesize(cfg.data.synth, cfg.data.split, cfg.seed)
    steps.update()
    cat_dir, pairs_dir = cfg.stage_dir("data", "catalogue"), cfg.stage_dir("data", "pairs")
    save_table(catalogue, cat_dir, kind="catalogue", stage="data.synth", config=cfg.data.synth,
               seed=cfg.seed)
    mix = _mix(pairs.column("rsl"))
    splits = {s: int(c) for s, c in zip(*np.unique(pairs.column("split").to_numpy(zero_copy_only=False),
                                                     return_counts=True), strict=True)}
    n_queries = len(pairs.column("query").unique())
    save_table(pairs, pairs_dir, kind="pairs", stage="data.synth",
               config={"synth": cfg.data.synth, "split": cfg.data.split}, seed=cfg.seed,
               counts={"queries": n_queries, "items": catalogue.num_rows, **splits}, label_mix=mix)
    steps.update()
    steps.close()
    out = {"catalogue": str(cat_dir), "pairs": str(pairs_dir), "items": catalogue.num_rows,
           "pairs_rows": pairs.num_rows, "queries": n_queries, "label_mix": mix, "splits": splits}
    log.info("synth: %d items, %d queries, %d pairs, label mix %s", catalogue.num_rows, n_queries,
             pairs.num_rows, mix)
    return out


def run_simulate(cfg: Config, pairs_dir: str | Path | None = None) -> dict[str, Any]:
    """Simulate users, exposures and clicks over a pairs table; write events, counterfactual, ground truth."""
    from llm2ctr.data.simulate import simulate
    from llm2ctr.data.simulate_tables import (
        counterfactual_table,
        event_truth_table,
        events_table,
        params,
        request_truth_table,
        users_table,
    )

    sim_cfg = cfg.data.simulate
    pairs_dir = Path(pairs_dir) if pairs_dir is not None else cfg.stage_dir("data", "pairs")
    steps = tqdm(total=5, desc="simulate", unit="step", leave=False)
    pairs = load_pairs(pairs_dir)
    sim = simulate(pairs, sim_cfg, cfg.seed, source=str(pairs_dir))
    steps.update()
    events = events_table(sim, sim_cfg)
    steps.update()
    cf = counterfactual_table(sim, sim_cfg)
    steps.update()
    ev_dir, cf_dir = cfg.stage_dir("data", "events"), cfg.stage_dir("data", "counterfactual")
    gt_dir = cfg.stage_dir("data", "ground_truth")
    inputs = {"pairs": pairs_dir}
    ctr = float(np.mean(sim.click[sim.exposed])) if sim.exposed.any() else 0.0
    policy = sim.exposed & ~sim.exploration[:, None]  # the exposure policy's slates (exploration aside)
    rsl4 = float(np.mean(sim.rsl[policy] == 4)) if policy.any() else 0.0
    n_explore = int(sim.exploration.sum())
    common = {"stage": "data.simulate", "config": sim_cfg, "inputs": inputs, "seed": cfg.seed}
    world = {} if sim_cfg.world == "classic" else {"world": sim_cfg.world, "exploration_requests": n_explore}
    save_table(events, ev_dir, kind="events", **common, ctr=ctr, exposed_rsl4_share=rsl4, **world,
               counts={"requests": len(sim.req.user), "clicks": int(sim.click.sum())})
    save_table(cf, cf_dir, kind="events", **common, counterfactual=True,
               counts={"requests": len(sim.req.user), "exposed": int(sim.exposed.sum())})
    steps.update()
    users = users_table(sim)
    truth = event_truth_table(sim)
    req_truth = request_truth_table(sim)
    import datasets

    with atomic_dir(gt_dir) as tmp:
        datasets.Dataset(users).save_to_disk(str(tmp / "users"))
        datasets.Dataset(truth).save_to_disk(str(tmp / "events"))
        datasets.Dataset(req_truth).save_to_disk(str(tmp / "requests"))
        atomic_write_json(tmp / "params.json", params(sim, sim_cfg))
        write_manifest(tmp, kind="ground_truth", **common,
                       counts={"users": users.num_rows, "events": truth.num_rows, "requests": req_truth.num_rows},
                       tables={"users": "users", "events": "events (rows in data/events order)",
                               "requests": "requests (one row per request, request-id order)",
                               "params": "params.json"})
    steps.update()
    steps.close()
    out = {"events": str(ev_dir), "counterfactual": str(cf_dir), "ground_truth": str(gt_dir),
           "requests": len(sim.req.user), "event_rows": events.num_rows, "counterfactual_rows": cf.num_rows,
           "ctr": round(ctr, 5), "exposed_rsl4_share": round(rsl4, 4), "intercept": round(sim.intercept, 4),
           "unlabelled_pairs_skipped": sim.pool.n_unlabelled, "world": sim_cfg.world,
           "n_types": sim.pool.n_types, "exploration_requests": n_explore}
    log.info("simulate: %s", out)
    return out


def run_history(cfg: Config, events_dir: str | Path | None = None) -> dict[str, Any]:
    """User histories and cross-user sequences for every request ({workdir}/data/history)."""
    from llm2ctr.data.history import build_history, make_similarity

    events_dir = Path(events_dir) if events_dir is not None else cfg.stage_dir("data", "events")
    events = load_events(events_dir)
    hcfg = cfg.data.history
    table = build_history(events, hcfg, make_similarity(hcfg.similarity), source=str(events_dir))
    out_dir = cfg.stage_dir("data", "history")
    n_hist = table.column("n_hist").to_numpy()
    cross_len = np.diff(table.column("cross_pair_ids").combine_chunks().offsets.to_numpy())
    save_table(table, out_dir, kind="history", stage="data.history", config=hcfg, inputs={"events": events_dir},
               counts={"requests": table.num_rows})
    out = {"history": str(out_dir), "requests": table.num_rows,
           "mean_hist_len": round(float(n_hist.mean()), 3) if len(n_hist) else 0.0,
           "cold_start_share": round(float((n_hist < 3).mean()), 4) if len(n_hist) else 0.0,
           "mean_cross_len": round(float(cross_len.mean()), 3) if len(cross_len) else 0.0}
    log.info("history: %s", out)
    return out


def summarize(cfg: Config, events_dir: str | Path | None = None) -> dict[str, Any]:
    """Rows, label mix, CTR (overall, by position, by rsl), exposed rsl-4 share, cold-start shares."""
    from llm2ctr.data.world_summary import summarize_tables

    pairs_dir = cfg.stage_dir("data", "pairs")
    events_dir = Path(events_dir) if events_dir is not None else cfg.stage_dir("data", "events")
    pairs = load_pairs(pairs_dir) if (pairs_dir / "manifest.json").exists() else None
    events = load_events(events_dir) if (events_dir / "manifest.json").exists() else None
    hist_dir = cfg.stage_dir("data", "history")
    history = load_table(hist_dir, "history") if (hist_dir / "manifest.json").exists() else None
    if pairs is None and events is None:
        from llm2ctr.artifacts import ArtifactError

        raise ArtifactError(f"nothing to summarise: neither {pairs_dir} nor {events_dir} holds an artifact "
                            "(run `llm2ctr data synth` / `llm2ctr data simulate` first)")
    return summarize_tables(pairs, events, history)
