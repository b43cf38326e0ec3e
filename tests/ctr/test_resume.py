"""A training run killed with SIGKILL and restarted ends with exactly the uninterrupted weights."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

MODEL = "v2_frozen"  # cross-user attention, MoE and debias noise: every source of step randomness
SCRIPT = """
import sys
sys.path.insert(0, {here!r})
import torch
from conftest import FAST
from llm2ctr.config import load_config
from llm2ctr.ctr_finetune import jobs
from llm2ctr.ctr_finetune.baselines import build_model, get_spec
from llm2ctr.ctr_finetune.prepare import prepare
from llm2ctr.ctr_finetune.trainer import train

cfg = load_config(None, ["workdir={workdir}", *FAST, "ctr.checkpoint_every=4", "ctr.max_steps=40",
                         "ctr.batch_size=256"])
torch.set_num_threads(1)
p = prepare(cfg)
spec = get_spec({model!r})
torch.manual_seed(cfg.ctr.seed)
model = build_model(spec, jobs._Contexts(cfg, p).get("distilled"), p.spec, cfg.ctr)
train(model, spec, p.reader("train"), cfg.ctr, {out!r}, progress=False)
"""


def _script(world: Path, out: Path) -> str:
    return SCRIPT.format(here=str(Path(__file__).parent), workdir=world, model=MODEL, out=str(out))


def test_sigkill_then_resume_gives_identical_weights(world, tmp_path, ctr_config):
    from llm2ctr.ctr_finetune.prepare import prepare

    prepare(ctr_config())  # features once, outside the timed child
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ref, run = tmp_path / "ref", tmp_path / "run"
    subprocess.run([sys.executable, "-c", _script(world, ref)], check=True, env=env, timeout=240)

    child = subprocess.Popen([sys.executable, "-c", _script(world, run)], env=env)
    state = run / "checkpoint" / "state.json"
    deadline = time.time() + 200
    while not state.is_file() and child.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL, "the child finished before it could be killed"
    killed_at = json.loads(state.read_text())["global_step"]
    assert 0 < killed_at < 40
    # restart: resumes from the checkpoint and finishes
    subprocess.run([sys.executable, "-c", _script(world, run)], check=True, env=env, timeout=240)

    a, b = load_file(str(ref / "model.safetensors")), load_file(str(run / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    log = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
    assert [r["global_step"] for r in log] == list(range(1, 41))  # no duplicated or missing steps
    ref_log = [json.loads(x) for x in (ref / "train_log.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in log] == [r["loss"] for r in ref_log]
