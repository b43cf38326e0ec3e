"""The embed job on the hf backend: dedupe, coverage, parts + merge, reduction, SIGKILL resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from llm2ctr.artifacts import ArtifactError, read_manifest
from llm2ctr.cli import main
from llm2ctr.data.store import load_pairs
from llm2ctr.teacher.backends.hf import HFBackend
from llm2ctr.teacher.jobs import run_embed, run_merge
from llm2ctr.teacher.prompts import PromptSpec, build_prompts
from llm2ctr.teacher.store import load_reduction, load_teacher_embeddings, restore_vectors

from .conftest import one_thread, tiny_config, write_workdir


@pytest.fixture(scope="module")
def full_store(small_workdir: Path, tiny_qwen: Path, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("full") / "embeddings"
    summary = run_embed(tiny_config(small_workdir, tiny_qwen), out_dir=out, progress=False)
    return out, summary


def _by_key(path: Path) -> dict[str, np.ndarray]:
    keys, vecs = load_teacher_embeddings(path)
    assert len(keys) == len(set(keys)), "a pair stored twice"
    return dict(zip(keys, vecs, strict=True))


def test_every_pair_once_duplicates_embedded_once(full_store, small_workdir: Path, tiny_qwen: Path):
    out, summary = full_store
    pairs = load_pairs(small_workdir / "data" / "pairs")
    store = _by_key(out)
    assert set(store) == set(pairs.column("pair_id").to_pylist())
    m = read_manifest(out, "teacher_embeddings")
    assert m["counts"]["rows"] == pairs.num_rows > m["counts"]["unique_prompts"] == summary["unique_prompts"]
    assert m["dim"] == 128 and m["pooling"] == "last" and m["normalize"] is True
    assert m["template_hash"] == PromptSpec.from_config(tiny_config(small_workdir, tiny_qwen).teacher).template_hash()
    assert m["model_fingerprint"].startswith("local:") and m["counts"]["tokens"] > 0
    assert set(m["inputs"]) == {"pairs", "neighbours"}
    # identical (query, item) pairs share one prompt, so one vector
    seen: dict = {}
    for pid, q, it in zip(*(pairs.column(c).to_pylist() for c in ("pair_id", "query", "item_text")), strict=True):
        if (q, it) in seen:
            np.testing.assert_array_equal(store[pid], store[seen[(q, it)]])
        seen.setdefault((q, it), pid)


def test_store_equals_direct_backend_embedding(full_store, small_workdir: Path, tiny_qwen: Path):
    out, _ = full_store
    cfg = tiny_config(small_workdir, tiny_qwen)
    pairs = load_pairs(small_workdir / "data" / "pairs")
    from llm2ctr.data.store import load_table

    prompts = build_prompts(pairs, PromptSpec.from_config(cfg.teacher), load_table(small_workdir / "rag" / "neighbours",
                                                                                  "neighbours"))
    direct = HFBackend(cfg.teacher, str(tiny_qwen)).embed(prompts[:20])
    store = _by_key(out)
    got = np.stack([store[p] for p in pairs.column("pair_id").to_pylist()[:20]])
    np.testing.assert_allclose(got, direct, atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_parts_merge_to_the_full_store(full_store, small_workdir: Path, tiny_qwen: Path, tmp_path: Path):
    out, _ = full_store
    cfg = tiny_config(small_workdir, tiny_qwen)
    rows = [run_embed(cfg, shard=f"{i}/2", out_dir=tmp_path / "embeddings", progress=False)["rows"] for i in range(2)]
    assert all(r > 0 for r in rows)
    summary = run_merge(cfg, out_dir=tmp_path / "embeddings")
    assert summary["rows"] == sum(rows) and summary["parts"] == 2
    full, merged = _by_key(out), _by_key(tmp_path / "embeddings")
    assert set(full) == set(merged)
    np.testing.assert_allclose(np.stack([merged[k] for k in full]), np.stack(list(full.values())), atol=2e-5)
    with pytest.raises(ValueError, match="--shard expects i/n"):
        run_embed(cfg, shard="2/2", out_dir=tmp_path / "x")
    with pytest.raises(ArtifactError, match=r"parts 0\.\.1 of 2 exactly once; found indices \[1\]"):
        run_merge(cfg, parts=[tmp_path / "embeddings.part-1-of-2"], out_dir=tmp_path / "y")
    with pytest.raises(ArtifactError, match="not a part of a sharded job"):
        run_merge(cfg, parts=[out, tmp_path / "embeddings.part-1-of-2"], out_dir=tmp_path / "y")


@pytest.mark.parametrize("method", ["pca", "matryoshka"])
def test_reduction_records_fidelity(method: str, full_store, small_workdir: Path, tiny_qwen: Path, tmp_path: Path):
    out, _ = full_store
    cfg = tiny_config(small_workdir, tiny_qwen, reduction=method, reduced_dim=24, pca_sample=60)
    run_embed(cfg, out_dir=tmp_path / "r", progress=False)
    m = read_manifest(tmp_path / "r")
    fid = m["compression"]["fidelity"]
    assert m["dim"] == 24 and m["dtype"] == "float16" and m["compression"]["original_dim"] == 128
    assert 0.0 < fid["min_cosine"] <= fid["mean_cosine"] <= 1.0 and fid["rows"] == m["counts"]["unique_prompts"]
    keys, reduced = load_teacher_embeddings(tmp_path / "r")
    assert reduced.shape == (m["counts"]["rows"], 24)
    full = _by_key(out)
    orig = np.stack([full[k] for k in keys])
    restored = restore_vectors(reduced, load_reduction(tmp_path / "r"))
    cos = (restored * orig).sum(1) / np.linalg.norm(restored, axis=1) / np.linalg.norm(orig, axis=1)
    assert abs(cos.mean() - fid["mean_cosine"]) < 1e-3 and cos.min() >= fid["min_cosine"] - 1e-3
    if method == "pca":
        assert fid["mean_cosine"] > 0.95  # 24 of 128 PCA dims of a tiny random model keep most of it
    else:  # a random model is not Matryoshka-trained: the prefix keeps about sqrt(24/128) of the direction
        assert fid["mean_cosine"] < 0.8


def _cli(workdir: Path, model: Path, out: Path) -> list[str]:
    return [sys.executable, "-c", "import sys; from llm2ctr.cli import main; sys.exit(main())", "teacher", "embed",
            f"workdir={workdir}", f"teacher.model={model}", "teacher.pooling=last", "teacher.batch_size=16",
            "teacher.shard_size=24", "teacher.store_dtype=float32", "--out", str(out), "--no-progress"]


@pytest.mark.slow
def test_sigkill_then_resume_gives_identical_store(tiny_qwen: Path, tmp_path: Path):
    wd = write_workdir(tmp_path / "wd", 480, seed=3)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli(wd, tiny_qwen, killed), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list(tmp_path.glob(".killed.work-*/shard-*.arrow"))) >= 2:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    assert not killed.exists()
    n_before = len(list(tmp_path.glob(".killed.work-*/shard-*.arrow")))
    plan = json.loads(next(tmp_path.glob(".killed.work-*/plan.json")).read_text())
    assert 2 <= n_before < plan["n_shards"]
    # restart (same command) and an uninterrupted run (in this process, same single thread)
    subprocess.run(_cli(wd, tiny_qwen, killed), env=env, check=True, capture_output=True, timeout=300)
    ref = tmp_path / "ref"
    with one_thread():
        assert main(_cli(wd, tiny_qwen, ref)[3:]) == 0
    mk, mr = read_manifest(killed), read_manifest(ref)
    assert mk["content_hash"] == mr["content_hash"] and mk["shards"] == mr["shards"]
    for name in mr["shards"]:
        assert (killed / name).read_bytes() == (ref / name).read_bytes()
    keys, _ = load_teacher_embeddings(killed)
    assert len(keys) == len(set(keys)) == 480
    assert not list(tmp_path.glob(".killed.work-*")) and not list(killed.glob(".*"))


def test_plan_dedupes_sorts_and_partitions():
    from llm2ctr.teacher.embed_job import make_plan

    prompts = ["ccc", "a", "bb", "a", "dddd", "bb", "a", "eeeee"]
    plan = make_plan(prompts, None, 0)
    assert plan.prompts == ["a", "bb", "ccc", "dddd", "eeeee"] and plan.n_unique_total == 5
    groups = [plan.rows[plan.offsets[j]:plan.offsets[j + 1]].tolist() for j in range(len(plan.prompts))]
    assert groups == [[1, 3, 6], [2, 5], [0], [4], [7]] and plan.pairs_in(0, 2) == 5
    parts = [make_plan(prompts, (i, 3), 2) for i in range(3)]
    assert sorted(p for pl in parts for p in pl.prompts) == sorted(set(prompts))
    assert sorted(r for pl in parts for r in pl.rows.tolist()) == list(range(len(prompts)))
    assert all(pl.sample == parts[0].sample and len(pl.sample) == 2 for pl in parts)
    assert make_plan([], None, 0).prompts == []
