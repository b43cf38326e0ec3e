"""LoRA adapt -> embed round trip on the tiny Qwen2 (hf backend; vLLM in test_vllm.py)."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from llm2ctr.artifacts import read_manifest
from llm2ctr.cli import main
from llm2ctr.teacher.adapt import merged_model_dir
from llm2ctr.teacher.jobs import run_adapt, run_embed
from llm2ctr.teacher.store import load_teacher_embeddings

from .conftest import one_thread, write_workdir


def test_adapter_learns_and_is_saved(adapted):
    cfg, summary = adapted
    out = Path(summary["out"])
    m = read_manifest(out, "teacher_adapter")
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    assert (out / "head.safetensors").is_file() and m["pooling"] == "last"
    assert summary["steps"] == 4 * 9 and summary["train_pairs"] == 72
    assert summary["loss_last"] < summary["loss_first"] - 0.1  # labels follow the item text: learnable


def test_embed_with_adapter_differs_and_matches_merged_folder(adapted, tmp_path: Path):
    cfg, _ = adapted
    base = run_embed(cfg, out_dir=tmp_path / "base", progress=False)
    with_adapter = copy.deepcopy(cfg)
    with_adapter.teacher.use_adapter = True
    run_embed(with_adapter, out_dir=tmp_path / "lora", progress=False)
    kb, vb = load_teacher_embeddings(tmp_path / "base")
    kl, vl = load_teacher_embeddings(tmp_path / "lora")
    assert kb == kl and base["rows"] == len(kl)
    assert np.abs(vb - vl).max() > 1e-2  # the adapter changed the teacher
    assert "adapter" in read_manifest(tmp_path / "lora")["inputs"]
    # the merged folder (what vLLM / a server loads) is the same model as merge-in-memory
    merged = copy.deepcopy(cfg)
    merged.teacher.model = str(merged_model_dir(cfg.teacher, Path(cfg.workdir) / "teacher" / "adapter"))
    run_embed(merged, out_dir=tmp_path / "merged", progress=False)
    km, vm = load_teacher_embeddings(tmp_path / "merged")
    assert km == kl
    np.testing.assert_allclose(vm, vl, atol=2e-5)


def test_adapt_refuses_a_server_and_unlabelled_data(adapted, tmp_path: Path):
    cfg = copy.deepcopy(adapted[0])
    cfg.teacher.backend = "openai"
    with pytest.raises(Exception, match="trains the model in-process"):
        run_adapt(cfg, out_dir=tmp_path / "a", progress=False)


def _adapt_cli(workdir: Path, model: Path, out: Path) -> list[str]:
    return [sys.executable, "-c", "import sys; from llm2ctr.cli import main; sys.exit(main())", "teacher", "adapt",
            f"workdir={workdir}", f"teacher.model={model}", "teacher.pooling=last", "teacher.max_model_len=96",
            "teacher.lora.r=4", "teacher.lora.lr=0.005", "teacher.lora.epochs=3", "teacher.lora.batch_size=8",
            "teacher.lora.save_every=2", "--out", str(out), "--no-progress"]


@pytest.mark.slow
def test_adapt_sigkill_then_resume_gives_the_same_adapter(tiny_qwen: Path, tmp_path: Path):
    wd = write_workdir(tmp_path / "wd", 120)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "adapter"
    proc = subprocess.Popen(_adapt_cli(wd, tiny_qwen, out), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if list(tmp_path.glob(".adapter.work-*/checkpoint.pt")):
                time.sleep(0.3)  # let it get past the first checkpoint
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    assert not out.exists()
    done = subprocess.run(_adapt_cli(wd, tiny_qwen, out), env=env, capture_output=True, timeout=300, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming teacher adapt from step" in done.stderr
    ref = tmp_path / "ref"  # uninterrupted, in this process with the same single thread
    with one_thread():
        main(_adapt_cli(wd, tiny_qwen, ref)[3:])
    for name in ("adapter_model.safetensors", "head.safetensors"):
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    assert json.loads((out / "metrics.json").read_text()) == json.loads((ref / "metrics.json").read_text())
    assert not list(tmp_path.glob(".adapter.work-*"))
