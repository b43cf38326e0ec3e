"""Two clean runs of a small pipeline with the same config and seed give byte-identical students and
rankers, each run in its own process (hash seeds, thread pools and imports all fresh).

Compared: every file of student/tokenizer; every file of student/model except the two that record
wall-clock facts (training_summary.json: samples/s; manifest.json: creation time); the ranker's
weights, training log and predictions.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llm2ctr.config import load_config
from llm2ctr.pipeline import run_pipeline

pytestmark = pytest.mark.slow

TINY = [
    "data.synth.n_categories=4", "data.synth.items_per_category=60", "data.synth.n_queries=60",
    "data.synth.pairs_per_query=12", "data.simulate.n_users=80", "data.simulate.n_requests=400",
    "data.simulate.candidates_per_request=12", "data.simulate.slate_size=6",
    "student.vocab_size=400", "student.epochs=1", "student.batch_size=64", "student.max_length=24",
    "pipeline.student_variants=[sft+mse]", "student.variant=sft+mse", "student.eval_seeds=1",
    "pipeline.ctr_models=[prectr_v2]", "ctr.epochs=1", "ctr.batch_size=256",
]
STAGES = "student_tokenizer,student_train,ctr_train"
TIMING_FILES = {"training_summary.json", "manifest.json"}


def _teacher_store(workdir: Path) -> None:
    """Deterministic stand-in teacher vectors (a seeded projection of each pair's id)."""
    from llm2ctr.data.store import load_pairs
    from llm2ctr.teacher.store import EmbeddingStoreWriter

    ids = load_pairs(workdir / "data" / "pairs").column("pair_id").to_pylist()
    seeds = [int.from_bytes(hashlib.sha256(i.encode()).digest()[:4], "little") for i in ids]
    vecs = np.stack([np.random.default_rng(s).normal(size=16) for s in seeds]).astype(np.float32)
    with EmbeddingStoreWriter(workdir / "teacher" / "embeddings", dim=16, dtype="float32", model_id="seeded") as w:
        w.add(ids, vecs)


def _digests(folder: Path, skip: set[str] = frozenset()) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in skip}


def test_two_clean_runs_give_identical_student_and_ranker(tmp_path):
    base = tmp_path / "base"
    run_pipeline(load_config(None, [f"workdir={base}", *TINY]), only=["pairs", "simulate", "history"])
    _teacher_store(base)
    runs = []
    for name in ("a", "b"):
        wd = tmp_path / name
        shutil.copytree(base, wd)
        p = subprocess.run([sys.executable, "-m", "llm2ctr", "pipeline", "run", "--stages", STAGES, f"workdir={wd}",
                            *TINY], capture_output=True, text=True, timeout=900,
                           env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
        assert p.returncode == 0, (p.stdout + p.stderr)[-4000:]
        runs.append(wd)
    a, b = runs
    for sub, must in (("student/tokenizer", "tokenizer.json"), ("student/model", "relevance/model.safetensors")):
        da, db = _digests(a / sub, TIMING_FILES), _digests(b / sub, TIMING_FILES)
        assert da == db and must in da, sub
    ranker = Path("ctr/models/prectr_v2")
    for f in ("model.safetensors", "train_log.jsonl", "pred_test.npz", "pred_valid.npz"):
        assert (a / ranker / f).read_bytes() == (b / ranker / f).read_bytes(), f
