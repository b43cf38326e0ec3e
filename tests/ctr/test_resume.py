"""A training run killed with SIGKILL and restarted ends with exactly the uninterrupted weights,
log and summary: a step-capped run, and a run with validation and early stopping."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file

MODEL = "v2_frozen"  # cross-user attention, MoE and debias noise: every source of step randomness
SCRIPT = """
import json, sys
sys.path.insert(0, {here!r})
import torch
from conftest import FAST
from llm2ctr.config import load_config
from llm2ctr.ctr import jobs
from llm2ctr.ctr.baselines import build_model, get_spec
from llm2ctr.ctr.prepare import prepare
from llm2ctr.ctr.trainer import train

cfg = load_config(None, ["workdir={workdir}", *FAST, "ctr.checkpoint_every=4", *{overrides!r}])
torch.set_num_threads(1)
p = prepare(cfg)
spec = get_spec({model!r})
torch.manual_seed(cfg.ctr.seed)
model = build_model(spec, jobs.TextContexts(cfg, p).get("distilled"), p.spec, cfg.ctr)
s = train(model, spec, p.reader("train"), cfg.ctr, {out!r}, progress=False,
          valid=p.reader("valid") if {valid!r} else None)
open({out!r} + "/summary.json", "w").write(json.dumps(s))
"""
STEP_CAPPED = ["ctr.max_steps=40", "ctr.batch_size=256"]
# 13 steps an epoch; lr 1e-2 overfits within a few epochs, so patience 1 stops before the 6th
EARLY_STOPPING = ["ctr.batch_size=1024", "ctr.epochs=6", "ctr.lr=1e-2", "ctr.early_stopping_patience=1",
                  "ctr.early_stopping_min_delta=0"]


def _script(world: Path, out: Path, overrides: list[str], valid: bool) -> str:
    return SCRIPT.format(here=str(Path(__file__).parent), workdir=world, model=MODEL, out=str(out),
                         overrides=overrides, valid=valid)


def _kill_then_resume(world: Path, tmp_path: Path, overrides: list[str], valid: bool,
                      ready: Callable[[dict], bool]) -> tuple[Path, Path, dict]:
    """Run once uninterrupted (ref); run again, SIGKILL it as soon as its checkpoint state is
    ``ready``, restart it to the end. Returns (ref dir, run dir, the state it was killed at)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ref, run = tmp_path / "ref", tmp_path / "run"
    subprocess.run([sys.executable, "-c", _script(world, ref, overrides, valid)], check=True, env=env, timeout=240)

    child = subprocess.Popen([sys.executable, "-c", _script(world, run, overrides, valid)], env=env)
    state = run / "checkpoint" / "state.json"
    deadline = time.time() + 200
    while child.poll() is None and time.time() < deadline:
        if state.is_file() and ready(json.loads(state.read_text())):
            break
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL, "the child finished before it could be killed"
    killed = json.loads(state.read_text())
    # restart: resumes from the checkpoint and finishes
    subprocess.run([sys.executable, "-c", _script(world, run, overrides, valid)], check=True, env=env, timeout=240)

    a, b = load_file(str(ref / "model.safetensors")), load_file(str(run / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    return ref, run, killed


def _log(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]


def _summary(out: Path) -> dict:
    s = json.loads((out / "summary.json").read_text())
    return {k: v for k, v in s.items() if k not in ("train_seconds", "samples_per_s")}


def test_sigkill_then_resume_gives_identical_weights(world, tmp_path, ctr_config):
    from llm2ctr.ctr.prepare import prepare

    prepare(ctr_config())  # features once, outside the timed child
    ref, run, killed = _kill_then_resume(world, tmp_path, STEP_CAPPED, False, lambda st: st["global_step"] > 0)
    assert 0 < killed["global_step"] < 40
    log = _log(run)
    assert [r["global_step"] for r in log] == list(range(1, 41))  # no duplicated or missing steps
    assert [r["loss"] for r in log] == [r["loss"] for r in _log(ref)]


def test_sigkill_after_a_validation_then_resume_early_stops_identically(world, tmp_path, ctr_config):
    from llm2ctr.ctr.prepare import prepare

    prepare(ctr_config())
    ref, run, killed = _kill_then_resume(world, tmp_path, EARLY_STOPPING, True,
                                         lambda st: len(st["early_stopping"]["losses"]) >= 1)
    assert not killed["early_stopping"]["stopped"], "killed too late to test the resume"
    summary = _summary(run)
    assert summary == _summary(ref)
    assert summary["stopped_early"] and summary["epochs_run"] < 6, summary
    assert _log(run) == _log(ref)  # step lines (loss, lr) and validation lines, each exactly once
    assert [r["epoch"] for r in _log(run) if r.get("event") == "valid"] == list(range(summary["epochs_run"]))
    a, b = load_file(str(ref / "best.safetensors")), load_file(str(run / "best.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
