"""Training: the loss goes down, resume is exact (in process and after SIGKILL), missing teachers counted."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from llm2ctr.student.jobs import load_tokenizer, load_training_data, run_train
from llm2ctr.student.modeling import Student, student_config
from llm2ctr.student.trainer import StudentTrainer, evaluate_loss

from .conftest import build_world, small_config


def _data(world: Path, **kw):
    cfg = small_config(world, **kw)
    tok = load_tokenizer(world / "student" / "tokenizer")
    data, counts, tdim = load_training_data(cfg, tok)
    return cfg, tok, data, counts, tdim


def _model(cfg, tok, tdim, seed=0) -> Student:
    torch.manual_seed(seed)
    sc = cfg.student
    return Student.from_config(student_config(len(tok), d_model=sc.d_model, num_layers=sc.num_layers,
                                              num_heads=sc.num_heads, ffn_dim=sc.ffn_dim, max_length=sc.max_length,
                                              dropout=sc.dropout), teacher_dim=tdim, pooling=sc.pooling)


def test_loss_goes_down(world, tmp_path):
    cfg, tok, data, _, tdim = _data(world, epochs=40, lr=3e-3, patience=0, batch_size=16, dropout=0.0,
                                    warmup_ratio=0.0, checkpoint_every=1000, mse_weight=1.0)
    train = data.subset(np.flatnonzero(data.splits == "train")[:64])
    tr = StudentTrainer(_model(cfg, tok, tdim), train, None, cfg.student, "sft+mse", tmp_path / "run")
    before = evaluate_loss(tr.eval_loss_fn, train, 256, "cpu")
    tr.train()
    after = evaluate_loss(tr.eval_loss_fn, train, 256, "cpu")
    assert after["ce"] < 0.6 * before["ce"]
    d = cfg.student.distill_loss
    assert after[d] < 0.8 * before[d]
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r][:3] == [1, 2, 3]


def test_resume_reproduces_the_next_step(world, tmp_path):
    cfg, tok, data, _, tdim = _data(world, checkpoint_every=7, grad_accum=2, epochs=3)
    train, valid = data.subset(data.splits == "train"), data.subset(data.splits == "valid")
    ref = StudentTrainer(_model(cfg, tok, tdim), train, valid, cfg.student, "sft+mse", tmp_path / "ref")
    ref.train(max_steps=8)
    first = StudentTrainer(_model(cfg, tok, tdim), train, valid, cfg.student, "sft+mse", tmp_path / "a")
    first.train(max_steps=7)
    # a different initialisation proves the weights come from the checkpoint
    resumed = StudentTrainer(_model(cfg, tok, tdim, seed=99), train, valid, cfg.student, "sft+mse", tmp_path / "a")
    resumed.train(max_steps=8)
    assert resumed.step == 8
    assert resumed.last_step_loss == ref.last_step_loss
    for (k, a), b in zip(ref.raw_model.state_dict().items(), resumed.raw_model.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_changed_config_does_not_resume(world, tmp_path):
    cfg, tok, data, _, tdim = _data(world, checkpoint_every=3)
    train = data.subset(data.splits == "train")
    StudentTrainer(_model(cfg, tok, tdim), train, None, cfg.student, "sft", tmp_path / "a").train(max_steps=3)
    cfg2, *_ = _data(world, checkpoint_every=3, lr=5e-4)
    tr = StudentTrainer(_model(cfg, tok, tdim), train, None, cfg2.student, "sft", tmp_path / "a")
    assert tr.maybe_resume() is False


# the victim runs with this process's thread count: float sums differ with the number of threads,
# and other tests' conftests may have changed it for the whole session
_TRAIN = ("import sys, torch; torch.set_num_threads(int(sys.argv[1])); from llm2ctr.config import load_config; "
          "from llm2ctr.student.jobs import run_train; run_train(load_config(None, sys.argv[2:]))")


def _overrides(workdir: Path) -> list[str]:
    return [f"workdir={workdir}", "student.vocab_size=200", "student.d_model=32", "student.num_layers=1",
            "student.num_heads=2", "student.ffn_dim=64", "student.max_length=16", "student.batch_size=16",
            "student.epochs=3", "student.checkpoint_every=4", "student.patience=0"]


def test_sigkill_then_resume_gives_identical_weights(world, tmp_path):
    from llm2ctr.config import load_config

    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        shutil.copytree(world, d)
    # the victim: the training job in its own process, killed right after its first checkpoint
    victim = subprocess.Popen([sys.executable, "-c", _TRAIN, str(torch.get_num_threads()), *_overrides(b)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pos = b / "student" / "runs" / "sft_mse" / "seed-0" / "checkpoint" / "position.json"
    deadline = time.time() + 90
    while not pos.exists() and time.time() < deadline and victim.poll() is None:
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    out = victim.communicate()[0]
    assert victim.returncode == -signal.SIGKILL, out[-2000:]
    assert not (b / "student" / "model").exists()  # killed before the end
    assert json.loads(pos.read_text())["epoch"] < 3
    run_train(load_config(None, _overrides(b)))  # the restart
    run_train(load_config(None, _overrides(a)))  # uninterrupted reference
    wa = load_file(str(a / "student" / "model" / "model.safetensors"))
    wb = load_file(str(b / "student" / "model" / "model.safetensors"))
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_missing_teacher_vectors_are_counted(tmp_path, caplog):
    from llm2ctr.data.store import load_pairs
    from llm2ctr.student.jobs import run_tokenizer

    from .conftest import write_teacher_store

    wd = build_world(tmp_path, n_queries=20, teacher=False)
    pairs = load_pairs(wd / "data" / "pairs")
    write_teacher_store(wd / "teacher" / "embeddings", pairs.slice(0, 100))
    cfg = small_config(wd, epochs=1)
    run_tokenizer(cfg)
    with caplog.at_level("WARNING"):
        res = run_train(cfg, "sft+mse")
    assert res["counts"]["pairs_without_teacher"] == pairs.num_rows - 100
    assert "without a teacher embedding" in caplog.text
    # sft+mse keeps every labelled row; mse only the 100 with a teacher vector
    res = run_train(cfg, "mse")
    assert res["counts"]["rows_unused_by_variant"] == pairs.num_rows - 100
    assert np.isclose(res["counts"]["train_rows"] + res["counts"]["valid_rows"]
                      + sum(1 for s in pairs.slice(0, 100).column("split").to_pylist() if s == "test"), 100)


@pytest.mark.skipif(sys.platform != "linux", reason="gloo on linux")
def test_two_process_cpu_launch(world, tmp_path):
    """`accelerate launch` with 2 CPU processes (gloo) trains and writes one model."""
    wd = tmp_path / "w"
    shutil.copytree(world, wd)
    cfgfile = Path(__file__).parents[2] / "configs" / "accelerate" / "cpu_2proc.yaml"
    accel = Path(sys.executable).with_name("accelerate")
    args = [f"workdir={wd}", "student.vocab_size=200", "student.d_model=32", "student.num_layers=1",
            "student.num_heads=2", "student.ffn_dim=64", "student.max_length=16", "student.batch_size=16",
            "student.epochs=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([str(accel), "launch", "--config_file", str(cfgfile), "-m", "llm2ctr.student", "train", *args],
                       env=env, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert '"processes": 2' in (wd / "student" / "model" / "training_summary.json").read_text()


def test_truncated_checkpoint_is_named(world, tmp_path):
    from llm2ctr.artifacts import ArtifactError

    cfg, tok, data, _, tdim = _data(world, checkpoint_every=3)
    train = data.subset(data.splits == "train")
    StudentTrainer(_model(cfg, tok, tdim), train, None, cfg.student, "sft", tmp_path / "a").train(max_steps=3)
    weights = tmp_path / "a" / "checkpoint" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    again = StudentTrainer(_model(cfg, tok, tdim), train, None, cfg.student, "sft", tmp_path / "a")
    with pytest.raises(ArtifactError, match=r"checkpoint: student checkpoint is damaged or truncated"):
        again.train(max_steps=4)


def test_num_threads_applies_to_training_only(world, tmp_path):
    cfg = small_config(world, epochs=1, num_threads=1)
    before = torch.get_num_threads()
    res = run_train(cfg, "sft+mse", out_dir=tmp_path / "model")
    assert res["threads"] == 1
    assert torch.get_num_threads() == before  # later stages in the same process keep theirs
