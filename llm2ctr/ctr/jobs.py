"""Ranker stage entry points: ``run_train``, ``run_eval``, ``run_report`` (CLI and pipeline call these).

Layout under ``{workdir}/ctr``: ``features/`` (prepare.py), ``work/<model>/`` (checkpoints and
``train_log.jsonl``; a killed run resumes from here), ``models/<model>/`` (weights, config,
predictions on every evaluation set, manifest), ``eval/results.json``, ``report/``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from llm2ctr.artifacts import atomic_dir, atomic_write_json, is_up_to_date, read_manifest, write_manifest
from llm2ctr.ctr import artifact as ctr_artifact
from llm2ctr.ctr.baselines import DEFAULT_SUITE, REGISTRY, ModelSpec, build_model, get_spec
from llm2ctr.ctr.debias import active_share_by_epoch
from llm2ctr.ctr.prepare import Prepared, make_context, prepare, student_dir, text_cache
from llm2ctr.ctr.registry import debias_method
from llm2ctr.ctr.trainer import predict, state_tensors, train
from llm2ctr.errors import ConfigError, InputError, MissingArtifactError
from llm2ctr.parallel import resolve_workers, run_jobs

log = logging.getLogger(__name__)


def _hash_obj(obj: dict) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


_ENCODER_SOURCE = {"none": "none", "frozen": "distilled", "finetune": "distilled", "random": "random"}
# rough cost order for longest-first scheduling: the encoder's backward pass dominates
_ENCODER_COST = {"finetune": 0, "random": 0, "frozen": 1, "none": 2}


def resolve_models(cfg, models: list[str] | None) -> list[str]:
    names = list(models or cfg.ctr.models or DEFAULT_SUITE)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise InputError(f"unknown ranker model(s) {unknown}; known: {', '.join(REGISTRY)}")
    return names


def _model_config(cfg, spec: ModelSpec) -> dict:
    c = dataclasses.asdict(cfg.ctr)
    # how the run is organised, not what it learns (num_threads: the same weights up to float summation order)
    for k in ("models", "time_budget_s", "hub_repo", "calibrate", "num_threads", "study_models", "study_seeds",
              "study_bootstrap"):
        c.pop(k, None)
    # options of other models stay out of this model's hash (changing them must not retrain it)
    unused = [] if spec.kind == "qin" else ["qin_top_k"]
    unused += [] if spec.long_history else ["long_history_len", "long_history_queries"]
    if debias_method(spec, cfg.ctr.debias) != "hccp":
        unused += ["hccp_margin", "hccp_temperature", "hccp_weight"]
    for k in unused:
        c.pop(k, None)
    return {"model": dataclasses.asdict(spec), "ctr": c}


class TextContexts:
    """One PairContext per text source (none / distilled / random), built on first use."""

    def __init__(self, cfg, prepared: Prepared) -> None:
        self.cfg, self.prepared, self._ctx = cfg, prepared, {}

    def get(self, source: str):
        if source not in self._ctx:
            text = None if source == "none" else text_cache(self.cfg, self.prepared, source)
            self._ctx[source] = make_context(self.prepared, text)
        return self._ctx[source]


def _fit_temperature(logit: np.ndarray, y: np.ndarray) -> float:
    from llm2ctr.ctr.calibration import fit_temperature

    return float(fit_temperature(logit, y))


def check_trainable(prepared: Prepared, spec: ModelSpec) -> None:
    """Controls need the simulator's truth; say so instead of training on NaN or a missing file."""
    if not prepared.has(spec.train_set):
        raise InputError(f"model {spec.name} trains on {spec.train_set!r}, which this log does not have "
                         "(it needs the click simulator's exploration slates: data.simulate.random_slate_share > 0)")
    if spec.oracle and not np.isfinite(prepared.reader("valid").column("sens_true")).all():
        raise InputError(f"model {spec.name} reads the true relevance sensitivity, which only a simulated log "
                         "has ({workdir}/data/ground_truth); leave it out on real data")


def base_rate_logit(reader) -> float:
    """log-odds of the training CTR: every model's output bias starts here.

    Why: with zero-initialised hashed weights and Adam, a model that must first learn the
    intercept does so through its per-id weights, frequent ids moving furthest; that left LR
    ranking *below* chance (AUC 0.48 exposed, 0.35 all-candidates) after a short run.
    """
    y = reader.column("label")
    ctr = float(np.clip(y.mean() if len(y) else 0.5, 1e-4, 1 - 1e-4))
    return float(np.log(ctr / (1 - ctr)))


def train_one(cfg, prepared: Prepared, spec: ModelSpec, contexts: TextContexts, progress: bool = True,
              root: Path | None = None) -> dict:
    """Train (or resume, or skip when up to date) one model and write ``<root>/models/<name>``.

    ``root`` defaults to ``{workdir}/ctr``; the seeded study passes one root per extra seed.
    """
    root = Path(root) if root is not None else ctr_artifact.root(cfg)
    out, work = ctr_artifact.model_dir(root, spec.name), ctr_artifact.work_dir(root, spec.name)
    check_trainable(prepared, spec)
    mcfg = _model_config(cfg, spec)
    inputs = {"features": prepared.directory}
    if spec.uses_text:
        inputs["student"] = student_dir(cfg)
    if is_up_to_date(out, ctr_artifact.KIND, mcfg, inputs):
        log.info("%s: up to date, skipped", spec.name)
        return read_manifest(out)["summary"]
    stamp = work / "config_hash.txt"
    if work.exists() and (not stamp.is_file() or stamp.read_text() != _hash_obj(mcfg)):
        shutil.rmtree(work)  # checkpoints of another config must not be resumed
    work.mkdir(parents=True, exist_ok=True)
    stamp.write_text(_hash_obj(mcfg))
    ctx = contexts.get(_ENCODER_SOURCE[spec.encoder])
    torch.manual_seed(cfg.ctr.seed)
    encoder = None
    if spec.encoder in ("finetune", "random") and not cfg.ctr.freeze_encoder:
        from llm2ctr.student.artifact import load_encoder

        encoder, _ = load_encoder(student_dir(cfg), random_init=spec.encoder == "random", seed=cfg.ctr.seed)
        encoder.train()
    model = build_model(spec, ctx, prepared.spec, cfg.ctr, encoder)
    train_reader = prepared.reader(spec.train_set)
    model.init_output_bias(base_rate_logit(train_reader))
    valid = prepared.reader("valid") if prepared.has("valid") and prepared.counts.get("valid", 0) > 0 else None
    summary = train(model, spec, train_reader, cfg.ctr, work, progress=progress, valid=valid)
    if debias_method(spec, cfg.ctr.debias) == "prectr":  # how often the truncation let the pairwise term act, per epoch (docs/ranker.md)
        lines = [json.loads(ln) for ln in (work / ctr_artifact.TRAIN_LOG).read_text().splitlines() if ln.strip()]
        summary["debias_active_share_by_epoch"] = active_share_by_epoch(lines)
    preds = {}
    t0 = time.perf_counter()
    for name in ("valid", "test", "cf_test"):
        if prepared.has(name):
            preds[name] = predict(model, prepared.reader(name), max(cfg.ctr.batch_size, 4096), f"predict {spec.name}/{name}")
    summary["predict_seconds"] = round(time.perf_counter() - t0, 3)
    temperature = 1.0
    if cfg.ctr.calibrate and "valid" in preds and prepared.counts.get("valid", 0) > 0:
        temperature = _fit_temperature(preds["valid"]["logit"], prepared.reader("valid").column("label"))
    summary["temperature"] = temperature
    with atomic_dir(out) as tmp:
        save_file(state_tensors(model), str(tmp / ctr_artifact.WEIGHTS_FILE))
        atomic_write_json(tmp / ctr_artifact.MODEL_FILE, {**mcfg, "feature_spec": dataclasses.asdict(prepared.spec), "temperature": temperature})
        for name, p in preds.items():
            np.savez(tmp / ctr_artifact.pred_file(name), **p)
        shutil.copy(work / ctr_artifact.TRAIN_LOG, tmp / ctr_artifact.TRAIN_LOG)
        write_manifest(tmp, kind=ctr_artifact.KIND, stage=ctr_artifact.STAGE, config=mcfg, inputs=inputs,
                       counts={k: int(v) for k, v in prepared.counts.items()}, summary=summary, role="model")
    return summary


def longest_first(jobs: list[tuple], spec_of) -> list[tuple]:  # noqa: ANN001
    """Jobs in the order a pool should start them: fine-tuned encoders, then the rest (stable)."""
    return sorted(jobs, key=lambda job: _ENCODER_COST[spec_of(job).encoder])


def warm_text_caches(cfg, prepared: Prepared, names: list[str]) -> None:
    """Write the student's text caches the models need before workers start (two workers writing
    the same cache file would race)."""
    for source in sorted({_ENCODER_SOURCE[get_spec(n).encoder] for n in names} - {"none"}):
        text_cache(cfg, prepared, source)


_WORKER: dict[str, object] = {}  # per worker process: the opened features and text contexts


def with_seed(cfg, seed: int):
    """The config with ``ctr.seed`` replaced (a study seed); features stay those of ``cfg``'s seed."""
    return dataclasses.replace(cfg, ctr=dataclasses.replace(cfg.ctr, seed=seed))


def train_job(cfg, name: str, seed: int | None = None, root: str | None = None) -> dict:
    """One model in a worker process (:func:`llm2ctr.parallel.run_jobs`) for ``seed`` (default
    ``ctr.seed``). The features are ``cfg``'s, opened once per process (they depend on ``ctr.seed``:
    prepared under a study seed's config they would be rebuilt)."""
    if cfg.ctr.num_threads > 0:
        torch.set_num_threads(cfg.ctr.num_threads)
    key = str(ctr_artifact.features_dir(cfg))
    if _WORKER.get("key") != key:
        _WORKER.clear()
        _WORKER.update(key=key, prepared=prepare(cfg), contexts={})
    prepared = _WORKER["prepared"]
    cfg_s = cfg if seed is None else with_seed(cfg, seed)
    contexts = _WORKER["contexts"].setdefault(cfg_s.ctr.seed, TextContexts(cfg_s, prepared))
    t0 = time.perf_counter()
    summary = train_one(cfg_s, prepared, get_spec(name), contexts, progress=False, root=root)
    summary["wall_seconds"] = round(time.perf_counter() - t0, 3)
    return summary


def run_train(cfg, models: list[str] | None = None, progress: bool = True) -> dict:
    """Prepare features, then train every requested model (default: the whole suite), ``workers`` at once."""
    names = resolve_models(cfg, models)
    if cfg.ctr.num_threads > 0:
        torch.set_num_threads(cfg.ctr.num_threads)
    t0 = time.perf_counter()
    prepared = prepare(cfg)
    prep_s = time.perf_counter() - t0
    done, skipped = {}, []
    budget = cfg.ctr.time_budget_s
    if resolve_workers(cfg.workers) > 1 and budget <= 0:  # a time budget is spent model by model: serial
        warm_text_caches(cfg, prepared, names)
        jobs = longest_first([(cfg, n) for n in names], lambda job: get_spec(job[1]))
        results = run_jobs(train_job, jobs, [n for _, n in jobs], cfg.workers, "train rankers")
        by_name = {n: r for (_, n), r in zip(jobs, results, strict=True)}
        done = {n: by_name[n] for n in names}
    else:
        contexts = TextContexts(cfg, prepared)
        for name in names:
            if budget > 0 and time.perf_counter() - t0 > budget:
                skipped.append(name)
                continue
            t1 = time.perf_counter()
            done[name] = train_one(cfg, prepared, get_spec(name), contexts, progress)
            done[name]["wall_seconds"] = round(time.perf_counter() - t1, 3)
    if skipped:
        log.warning("time budget %.0fs spent; not trained: %s", cfg.ctr.time_budget_s, skipped)
    return {"models": done, "skipped": skipped, "prepare_seconds": round(prep_s, 3),
            "seconds": round(time.perf_counter() - t0, 3), "counts": prepared.counts}


def _segments(n_hist: np.ndarray, cold_max: int) -> dict[str, np.ndarray]:
    cold = n_hist < cold_max
    return {"all": np.ones_like(cold), "cold_start": cold, "active": ~cold}


def trained_models(cfg) -> list[str]:
    """The configured seed's trained models, in registry order."""
    names = ctr_artifact.trained_models(ctr_artifact.root(cfg))
    order = {n: i for i, n in enumerate(REGISTRY)}
    return sorted(names, key=lambda n: order.get(n, len(order)))


def run_eval(cfg) -> dict:
    """Metrics per model x evaluation set x segment (calibrated scores), written to ctr/eval."""
    from llm2ctr.ctr.metrics import evaluate, evaluate_segments

    prepared = prepare(cfg)
    names = trained_models(cfg)
    if not names:
        raise MissingArtifactError(f"{ctr_artifact.models_dir(ctr_artifact.root(cfg))}: no trained ranker models; run `llm2ctr ctr train` first")
    results: dict = {}
    calibration: dict = {}
    for label, set_name in ctr_artifact.EVAL_SETS.items():
        if not prepared.has(set_name):
            continue
        reader = prepared.reader(set_name)
        y, users = reader.column("label"), reader.column("user_code")
        segs = _segments(reader.column("n_hist"), cfg.ctr.cold_start_max_hist)
        for name in names:
            mdir = ctr_artifact.model_dir(ctr_artifact.root(cfg), name)
            if not ctr_artifact.has_predictions(mdir, set_name):
                continue
            temp = ctr_artifact.temperature(mdir)
            p_raw = 1.0 / (1.0 + np.exp(-ctr_artifact.load_logits(mdir, set_name)))
            p_cal = ctr_artifact.calibrated_probability(mdir, set_name)
            results.setdefault(name, {})[label] = evaluate_segments(y, p_cal, users, segs)
            raw = evaluate(y, p_raw, users)
            calibration.setdefault(name, {})[label] = {
                "temperature": temp, "pcoc_before": raw["pcoc"], "pcoc_after": results[name][label]["all"]["pcoc"],
            }
    out = ctr_artifact.eval_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / ctr_artifact.RESULTS_FILE, {"results": results, "calibration": calibration})
    return {"results": results, "calibration": calibration}


def _exposed_predictions(cfg) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(y, calibrated p) on the exposed test set per model, for the calibration plot."""
    from llm2ctr.ctr.features import FeatureReader

    path = ctr_artifact.features_dir(cfg) / "test.arrow"
    if not path.is_file():
        return {}
    y = FeatureReader(path).column("label")
    out = {}
    for name in trained_models(cfg):
        mdir = ctr_artifact.model_dir(ctr_artifact.root(cfg), name)
        if ctr_artifact.has_predictions(mdir, "test"):
            out[name] = (y, ctr_artifact.calibrated_probability(mdir, "test"))
    return out


def run_report(cfg) -> dict:
    """Evaluate, run the ground-truth checks and write the report (markdown, JSON, plots)."""
    from llm2ctr.ctr.report import write_report
    from llm2ctr.ctr.verify import verify

    ev = run_eval(cfg)
    checks, checks_md = verify(cfg, prepare(cfg), trained_models(cfg))
    throughput = ["| model | steps | samples/s | train s | temperature | PCOC before → after (exposed) |", "|---|---:|---:|---:|---:|---|"]
    for name in trained_models(cfg):
        s = ctr_artifact.load_model_manifest(ctr_artifact.model_dir(ctr_artifact.root(cfg), name))["summary"]
        cal = ev["calibration"].get(name, {}).get("exposed", {})
        throughput.append(
            f"| {name} | {s['steps']} | {s['samples_per_s']} | {s['train_seconds']} | {s['temperature']:.3f} | "
            f"{cal.get('pcoc_before', float('nan')):.3f} → {cal.get('pcoc_after', float('nan')):.3f} |"
        )
    out = ctr_artifact.report_dir(cfg)
    baseline = next((b for b in ("wide_deep", "lr") if b in ev["results"]), None)
    written = write_report(
        ev["results"], out,
        extra_sections={"Checks": checks_md, "Training and calibration": "\n".join(throughput)},
        baseline=baseline, predictions=_exposed_predictions(cfg), config=cfg.ctr,
        inputs={"features": ctr_artifact.features_dir(cfg)},
    )
    atomic_write_json(out / "checks.json", {"checks": checks, "calibration": ev["calibration"]})
    return {"report": str(out), "checks": checks, "written": written}


def push(cfg, model: str, repo: str, dry_run: bool = False, private: bool = False) -> dict:
    """Upload ``ctr/models/<model>`` to the Hub (token from HF_TOKEN); ``dry_run`` lists files only."""
    folder = ctr_artifact.model_dir(ctr_artifact.root(cfg), model)
    read_manifest(folder, ctr_artifact.KIND)
    files = sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())
    if dry_run:
        return {"repo": repo, "folder": str(folder), "files": files, "uploaded": False}
    if not repo:
        raise ConfigError("no hub repo: pass --repo or set ctr.hub_repo")
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo, private=private, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=repo, commit_message=f"llm2ctr ranker {model}")
    return {"repo": repo, "folder": str(folder), "files": files, "uploaded": True}
