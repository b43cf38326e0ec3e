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
from llm2ctr.ctr_finetune import artifact as ranker
from llm2ctr.ctr_finetune.baselines import DEFAULT_SUITE, REGISTRY, ModelSpec, build_model, get_spec
from llm2ctr.ctr_finetune.debias import active_share_by_epoch
from llm2ctr.ctr_finetune.prepare import Prepared, make_context, prepare, student_dir, text_cache
from llm2ctr.ctr_finetune.registry import debias_method
from llm2ctr.ctr_finetune.trainer import predict, state_tensors, train
from llm2ctr.errors import ConfigError, InputError, MissingArtifactError

log = logging.getLogger(__name__)


def _hash_obj(obj: dict) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]




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
    from llm2ctr.ctr_finetune.calibration import fit_temperature

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
    root = Path(root) if root is not None else ranker.root(cfg)
    out, work = ranker.model_dir(root, spec.name), ranker.work_dir(root, spec.name)
    check_trainable(prepared, spec)
    mcfg = _model_config(cfg, spec)
    inputs = {"features": prepared.directory}
    if spec.uses_text:
        inputs["student"] = student_dir(cfg)
    if is_up_to_date(out, "ranker", mcfg, inputs):
        log.info("%s: up to date, skipped", spec.name)
        return read_manifest(out)["summary"]
    stamp = work / "config_hash.txt"
    if work.exists() and (not stamp.is_file() or stamp.read_text() != _hash_obj(mcfg)):
        shutil.rmtree(work)  # checkpoints of another config must not be resumed
    work.mkdir(parents=True, exist_ok=True)
    stamp.write_text(_hash_obj(mcfg))
    source = {"none": "none", "frozen": "distilled", "finetune": "distilled", "random": "random"}[spec.encoder]
    ctx = contexts.get(source)
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
        lines = [json.loads(ln) for ln in (work / ranker.TRAIN_LOG).read_text().splitlines() if ln.strip()]
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
        save_file(state_tensors(model), str(tmp / ranker.WEIGHTS_FILE))
        atomic_write_json(tmp / ranker.MODEL_FILE, {**mcfg, "feature_spec": dataclasses.asdict(prepared.spec), "temperature": temperature})
        for name, p in preds.items():
            np.savez(tmp / ranker.pred_file(name), **p)
        shutil.copy(work / ranker.TRAIN_LOG, tmp / ranker.TRAIN_LOG)
        write_manifest(tmp, kind="ranker", stage="ctr_finetune", config=mcfg, inputs=inputs,
                       counts={k: int(v) for k, v in prepared.counts.items()}, summary=summary, role="model")
    return summary


def run_train(cfg, models: list[str] | None = None, progress: bool = True) -> dict:
    """Prepare features, then train every requested model (default: the whole suite)."""
    names = resolve_models(cfg, models)
    if cfg.ctr.num_threads > 0:
        torch.set_num_threads(cfg.ctr.num_threads)
    t0 = time.perf_counter()
    prepared = prepare(cfg)
    prep_s = time.perf_counter() - t0
    contexts = TextContexts(cfg, prepared)
    done, skipped = {}, []
    for name in names:
        budget = cfg.ctr.time_budget_s
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
    names = ranker.trained_models(ranker.root(cfg))
    order = {n: i for i, n in enumerate(REGISTRY)}
    return sorted(names, key=lambda n: order.get(n, len(order)))


def run_eval(cfg) -> dict:
    """Metrics per model x evaluation set x segment (calibrated scores), written to ctr/eval."""
    from llm2ctr.ctr_finetune.metrics import evaluate, evaluate_segments

    prepared = prepare(cfg)
    names = trained_models(cfg)
    if not names:
        raise MissingArtifactError(f"{ranker.models_dir(ranker.root(cfg))}: no trained ranker models; run `llm2ctr ctr train` first")
    results: dict = {}
    calibration: dict = {}
    for label, set_name in ranker.EVAL_SETS.items():
        if not prepared.has(set_name):
            continue
        reader = prepared.reader(set_name)
        y, users = reader.column("label"), reader.column("user_code")
        segs = _segments(reader.column("n_hist"), cfg.ctr.cold_start_max_hist)
        for name in names:
            mdir = ranker.model_dir(ranker.root(cfg), name)
            if not ranker.has_predictions(mdir, set_name):
                continue
            temp = ranker.temperature(mdir)
            p_raw = 1.0 / (1.0 + np.exp(-ranker.load_logits(mdir, set_name)))
            p_cal = ranker.calibrated_probability(mdir, set_name)
            results.setdefault(name, {})[label] = evaluate_segments(y, p_cal, users, segs)
            raw = evaluate(y, p_raw, users)
            calibration.setdefault(name, {})[label] = {
                "temperature": temp, "pcoc_before": raw["pcoc"], "pcoc_after": results[name][label]["all"]["pcoc"],
            }
    out = ranker.eval_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / ranker.RESULTS_FILE, {"results": results, "calibration": calibration})
    return {"results": results, "calibration": calibration}


def _exposed_predictions(cfg) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(y, calibrated p) on the exposed test set per model, for the calibration plot."""
    from llm2ctr.ctr_finetune.features import FeatureReader

    path = ranker.features_dir(cfg) / "test.arrow"
    if not path.is_file():
        return {}
    y = FeatureReader(path).column("label")
    out = {}
    for name in trained_models(cfg):
        mdir = ranker.model_dir(ranker.root(cfg), name)
        if ranker.has_predictions(mdir, "test"):
            out[name] = (y, ranker.calibrated_probability(mdir, "test"))
    return out


def run_report(cfg) -> dict:
    """Evaluate, run the ground-truth checks and write the report (markdown, JSON, plots)."""
    from llm2ctr.ctr_finetune.report import write_report
    from llm2ctr.ctr_finetune.verify import verify

    ev = run_eval(cfg)
    checks, checks_md = verify(cfg, prepare(cfg), trained_models(cfg))
    throughput = ["| model | steps | samples/s | train s | temperature | PCOC before → after (exposed) |", "|---|---:|---:|---:|---:|---|"]
    for name in trained_models(cfg):
        s = ranker.load_model_manifest(ranker.model_dir(ranker.root(cfg), name))["summary"]
        cal = ev["calibration"].get(name, {}).get("exposed", {})
        throughput.append(
            f"| {name} | {s['steps']} | {s['samples_per_s']} | {s['train_seconds']} | {s['temperature']:.3f} | "
            f"{cal.get('pcoc_before', float('nan')):.3f} → {cal.get('pcoc_after', float('nan')):.3f} |"
        )
    out = ranker.report_dir(cfg)
    baseline = next((b for b in ("wide_deep", "lr") if b in ev["results"]), None)
    written = write_report(
        ev["results"], out,
        extra_sections={"Checks": checks_md, "Training and calibration": "\n".join(throughput)},
        baseline=baseline, predictions=_exposed_predictions(cfg), config=cfg.ctr,
        inputs={"features": ranker.features_dir(cfg)},
    )
    atomic_write_json(out / "checks.json", {"checks": checks, "calibration": ev["calibration"]})
    return {"report": str(out), "checks": checks, "written": written}


def push(cfg, model: str, repo: str, dry_run: bool = False, private: bool = False) -> dict:
    """Upload ``ctr/models/<model>`` to the Hub (token from HF_TOKEN); ``dry_run`` lists files only."""
    folder = ranker.model_dir(ranker.root(cfg), model)
    read_manifest(folder, "ranker")
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
