"""``llm2ctr pipeline run``: every stage in order, each skipped when nothing it depends on changed.

A stage is up to date when its stamp (``{workdir}/.pipeline/<stage>.json``, :func:`record_path`)
records the same config hash and the same input content hashes as now, and its outputs still
carry the content hashes it wrote. Stamps are written only after a stage finished, so a killed
pipeline re-runs the interrupted stage (which itself resumes where the stage supports it) and
skips the rest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm2ctr.artifacts import ArtifactError, atomic_write_json, hash_files, read_manifest
from llm2ctr.config import Config
from llm2ctr.ctr import artifact as ctr_artifact
from llm2ctr.errors import ConfigError

log = logging.getLogger(__name__)
RECORDS_DIR = ".pipeline"


def record_path(cfg: Config, stage_name: str) -> Path:
    """Where the pipeline records a finished stage (config hash, input/output hashes, seconds, summary)."""
    return Path(cfg.workdir) / RECORDS_DIR / f"{stage_name}.json"


def read_records(cfg: Config) -> dict[str, dict[str, Any]]:
    """Every finished stage's record, by stage name (sorted by name); what the final report quotes."""
    folder = Path(cfg.workdir) / RECORDS_DIR
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}


def _section(cfg: Config, dotted: str) -> Any:
    obj: Any = cfg
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj


def _run_synth_or_import(cfg: Config) -> dict:
    if cfg.pipeline.pairs_source:
        from llm2ctr.data.ingest import run_import

        return run_import(cfg, cfg.pipeline.pairs_source)
    from llm2ctr.data.jobs import run_synth

    return run_synth(cfg)


def _job(module: str, func: str, **kwargs: Any) -> Callable[[Config], dict]:
    """A stage runner that imports its stage only when it runs (keeps the CLI start instant)."""

    def run(cfg: Config) -> dict:
        fn = getattr(importlib.import_module(module), func)
        return fn(cfg, **{k: (v(cfg) if callable(v) else v) for k, v in kwargs.items()})

    return run


_run_simulate = _job("llm2ctr.data.jobs", "run_simulate")
_run_history = _job("llm2ctr.data.jobs", "run_history")
_run_rag_index = _job("llm2ctr.rag.jobs", "run_index")
_run_rag_neighbours = _job("llm2ctr.rag.jobs", "run_neighbours")
_run_teacher_adapt = _job("llm2ctr.teacher.jobs", "run_adapt")
_run_teacher = _job("llm2ctr.teacher.jobs", "run_embed")
_run_distill_pairs = _job("llm2ctr.student.jobs", "run_distill_pairs")
# RAG examples for the unlabelled distillation pairs: labelled *training* pairs of data/pairs found
# in rag/index, under the same leakage guard as the labelled pairs' neighbours
_run_rag_distill_neighbours = _job(
    "llm2ctr.rag.jobs",
    "run_external_neighbours",
    pairs_dir=lambda cfg: cfg.stage_dir("student", "distill_pairs"),
    out_dir=lambda cfg: cfg.stage_dir("rag", "distill_neighbours"),
)
# teacher embeddings of the distillation pairs, prompted like the labelled pairs: the distillation
# pairs carry no label themselves, but their prompts show retrieved labelled examples and edge cases
# (rag/distill_neighbours, ids into data/pairs), so both sets of targets live in one prompt space
_run_teacher_distill = _job(
    "llm2ctr.teacher.jobs",
    "run_embed",
    pairs_dir=lambda cfg: cfg.stage_dir("student", "distill_pairs"),
    neighbours_dir=lambda cfg: cfg.stage_dir("rag", "distill_neighbours"),
    examples_dir=lambda cfg: cfg.stage_dir("data", "pairs"),
    out_dir=lambda cfg: cfg.stage_dir("teacher", "distill_embeddings"),
)
_run_teacher_plain = _job("llm2ctr.teacher.jobs", "run_embed_plain")
_run_student_tokenizer = _job("llm2ctr.student.jobs", "run_tokenizer")


def _run_student_train(cfg: Config) -> dict:
    """Every variant of pipeline.student_variants (and student.variant, the ranker's) for each table
    seed; ``workers`` of them at once."""
    from llm2ctr.parallel import run_jobs
    from llm2ctr.student.jobs import run_train

    variants = list(dict.fromkeys([*cfg.pipeline.student_variants, cfg.student.variant]))
    seeds = [cfg.student.seed + k for k in range(max(1, cfg.student.eval_seeds))]
    labels = [f"{variant} seed {seed}" for variant in variants for seed in seeds]
    jobs = [(cfg, variant, None, None, seed) for variant in variants for seed in seeds]
    return dict(zip(labels, run_jobs(run_train, jobs, labels, cfg.workers, "train students"), strict=True))


_run_student_eval = _job("llm2ctr.student.jobs", "run_eval")
_run_ctr_train = _job("llm2ctr.ctr.jobs", "run_train", models=lambda cfg: cfg.pipeline.ctr_models or None)
_run_ctr_report = _job("llm2ctr.ctr.jobs", "run_report")
_run_ctr_study = _job("llm2ctr.ctr.study", "run_study")
_run_final_report = _job("llm2ctr.final_report", "write_final_report", records=lambda cfg: read_records(cfg))


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[Config], dict]
    sections: tuple[str, ...]  # config sections that change the stage's output
    inputs: tuple[str, ...]  # artifact directories (relative to workdir) it reads
    outputs: tuple[str, ...]  # artifact directories it writes (each with a manifest.json)
    help: str = ""
    enabled: Callable[[Config], bool] = lambda cfg: True  # optional stages switch on by config


STAGES: tuple[Stage, ...] = (
    Stage("pairs", _run_synth_or_import, ("seed", "data.synth", "data.split", "data.ingest", "pipeline.pairs_source"),
          (), ("data/pairs",), "synthetic catalogue + labelled pairs, or import of pipeline.pairs_source"),
    Stage("simulate", _run_simulate, ("seed", "data.simulate"), ("data/pairs",),
          ("data/events", "data/counterfactual", "data/ground_truth"), "click simulator"),
    Stage("history", _run_history, ("data.history",), ("data/events",), ("data/history",),
          "user history and cross-user sequences"),
    Stage("rag_index", _run_rag_index, ("rag",), ("data/pairs",), ("rag/index",), "embed + faiss index"),
    Stage("rag_neighbours", _run_rag_neighbours, ("rag",), ("data/pairs", "rag/index"), ("rag/neighbours",),
          "labelled neighbours and edge cases"),
    Stage("teacher_adapt", _run_teacher_adapt, ("teacher",), ("data/pairs", "rag/neighbours"),
          ("teacher/adapter",), "LoRA adaptation of the teacher (teacher.use_adapter=true)",
          enabled=lambda cfg: cfg.teacher.use_adapter),
    Stage("teacher", _run_teacher, ("teacher",), ("data/pairs", "rag/neighbours", "teacher/adapter"),
          ("teacher/embeddings",),
          "teacher embeddings"),
    Stage("teacher_plain", _run_teacher_plain, ("teacher",), ("data/pairs", "teacher/adapter"),
          ("teacher/plain_embeddings",), "teacher embeddings of the bare pairs (the table's plain teacher probe)",
          enabled=lambda cfg: cfg.pipeline.teacher_plain),
    Stage("distill_pairs", _run_distill_pairs,
          ("seed", "student.pairs_near_k", "student.pairs_random_k", "student.pairs_new_queries"),
          ("data/pairs", "data/catalogue", "data/events"), ("student/distill_pairs",),
          "unlabelled distillation pairs (pipeline.distill_pairs=true)",
          enabled=lambda cfg: cfg.pipeline.distill_pairs),
    Stage("rag_distill_neighbours", _run_rag_distill_neighbours, ("rag",),
          ("student/distill_pairs", "data/pairs", "rag/index"), ("rag/distill_neighbours",),
          "labelled training neighbours and edge cases of the distillation pairs (pipeline.distill_pairs=true, "
          "teacher.use_rag=true)",
          enabled=lambda cfg: cfg.pipeline.distill_pairs and cfg.teacher.use_rag),
    Stage("teacher_distill", _run_teacher_distill, ("teacher",),
          ("student/distill_pairs", "rag/distill_neighbours", "data/pairs", "teacher/adapter"),
          ("teacher/distill_embeddings",), "teacher embeddings of the distillation pairs' RAG prompts",
          enabled=lambda cfg: cfg.pipeline.distill_pairs),
    Stage("student_tokenizer", _run_student_tokenizer, ("student.vocab_size",), ("data/pairs",),
          ("student/tokenizer",), "domain tokenizer"),
    Stage("student_train", _run_student_train, ("student", "pipeline.student_variants"),
          ("data/pairs", "teacher/embeddings", "teacher/distill_embeddings", "student/tokenizer"),
          ("student/model",),
          "the student (student.variant) and the comparison variants, each over student.eval_seeds seeds"),
    Stage("student_eval", _run_student_eval, ("student", "pipeline.student_variants"),
          ("student/model", "teacher/embeddings", "teacher/plain_embeddings"),
          ("student/eval",), "distillation table: lexical baselines, teacher probes, students over seeds"),
    Stage("ctr_train", _run_ctr_train, ("ctr", "pipeline.ctr_models"),
          ("data/events", "data/counterfactual", "data/history", "student/model"), (ctr_artifact.MODELS,),
          "PRECTR-V2, baselines and ablations"),
    Stage("ctr_study", _run_ctr_study, ("ctr",), (ctr_artifact.MODELS, "data/ground_truth"), (ctr_artifact.STUDY,),
          "the ranker over ctr.study_seeds seeds: every claim with a 95% interval, oracle gain and control"),
    Stage("ctr_report", _run_ctr_report, ("ctr",), (ctr_artifact.MODELS, ctr_artifact.STUDY, "data/ground_truth"), (ctr_artifact.REPORT,),
          "ranker report + ground-truth checks"),
    Stage("report", _run_final_report, (), ("student/eval", ctr_artifact.REPORT, ctr_artifact.STUDY), ("report",),
          "one report for the whole pipeline"),
)
STAGE_NAMES = tuple(s.name for s in STAGES)
# outputs that are folders of artifacts (one manifest per member) rather than one artifact
COLLECTIONS = frozenset({ctr_artifact.MODELS})


def _content_hash(workdir: Path, rel: str) -> str | None:
    """The artifact's manifest hash; for a folder of artifacts (no manifest), a hash of its files."""
    path = workdir / rel
    if rel in COLLECTIONS:
        return ("dir:" + hash_files(path)) if path.is_dir() and any(path.iterdir()) else None
    try:
        return read_manifest(path)["content_hash"]
    except ArtifactError:
        return None


def _config_hash(cfg: Config, stage: Stage) -> str:
    blob = json.dumps({s: _section(cfg, s) for s in stage.sections}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def stage_state(cfg: Config, stage: Stage) -> tuple[bool, str]:
    """(up_to_date, reason) for one stage."""
    workdir = Path(cfg.workdir)
    stamp_file = record_path(cfg, stage.name)
    if not stamp_file.is_file():
        return False, "never run"
    stamp = json.loads(stamp_file.read_text())
    if stamp.get("config_hash") != _config_hash(cfg, stage):
        return False, "config changed"
    for rel in stage.inputs:
        if stamp.get("inputs", {}).get(rel) != _content_hash(workdir, rel):
            return False, f"input {rel} changed"
    for rel in stage.outputs:
        now = _content_hash(workdir, rel)
        if now is None:
            return False, f"output {rel} missing"
        if stamp.get("outputs", {}).get(rel) != now:
            return False, f"output {rel} modified"
    return True, "inputs and config unchanged"


def run_pipeline(cfg: Config, only: list[str] | None = None, force: bool = False) -> dict[str, Any]:
    """Run the stages in order; returns {stage: summary | 'skipped'}."""
    selected = only or cfg.pipeline.stages or list(STAGE_NAMES)
    unknown = sorted(set(selected) - set(STAGE_NAMES))
    if unknown:
        raise ConfigError(f"unknown pipeline stage(s) {unknown}; stages are: {', '.join(STAGE_NAMES)}")
    workdir = Path(cfg.workdir)
    results: dict[str, Any] = {}
    t_all = time.perf_counter()
    for stage in STAGES:
        if stage.name not in selected or not stage.enabled(cfg):
            continue
        fresh, reason = stage_state(cfg, stage)
        if fresh and not (force or cfg.pipeline.force):
            print(f"[pipeline] {stage.name:<22} skipped ({reason})", flush=True)
            results[stage.name] = "skipped"
            continue
        print(f"[pipeline] {stage.name:<22} running ({reason}): {stage.help}", flush=True)
        t0 = time.perf_counter()
        summary = stage.run(cfg)
        seconds = time.perf_counter() - t0
        stamp = {
            "stage": stage.name,
            "config_hash": _config_hash(cfg, stage),
            "inputs": {rel: _content_hash(workdir, rel) for rel in stage.inputs},
            "outputs": {rel: _content_hash(workdir, rel) for rel in stage.outputs},
            "seconds": round(seconds, 2),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "summary": summary,
        }
        atomic_write_json(record_path(cfg, stage.name), stamp)
        print(f"[pipeline] {stage.name:<22} done in {seconds:.1f}s", flush=True)
        results[stage.name] = summary
    print(f"[pipeline] finished in {time.perf_counter() - t_all:.1f}s; workdir {workdir}", flush=True)
    return results
