"""CLI verbs, the summary, and a SIGKILL in the middle of a job (no half artifact; re-run is identical)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llm2ctr.artifacts import read_manifest, verify_content
from llm2ctr.cli import main
from llm2ctr.data.jobs import run_simulate, run_synth, summarize

VERBS = ("synth", "simulate", "history", "summary")


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help(verb, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["data", verb, "--help"])
    assert exc.value.code == 0
    assert "key=value" in capsys.readouterr().out


def test_cli_runs_the_world_and_summarises(tmp_path, small_args, capsys):
    args = [f"workdir={tmp_path}", *small_args]
    for verb in ("synth", "simulate", "history"):
        assert main(["data", verb, *args]) == 0
    capsys.readouterr()
    assert main(["data", "summary", "--json", *args]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"pairs", "events", "history"}
    ev = out["events"]
    assert ev["ctr"] == pytest.approx(0.08, abs=0.01)
    assert set(ev["ctr_by_position"]) == {str(p) for p in range(1, 11)}
    assert 0.5 < ev["exposed_rsl4_share"] <= 0.85
    assert 0.05 < ev["cold_start_request_share"] < 0.9
    assert main(["data", "summary", *args]) == 0
    assert "cold_start_request_share" in capsys.readouterr().out


def test_bad_input_is_one_clear_message(tmp_path, capsys):
    assert main(["data", "simulate", f"workdir={tmp_path}", "data.simulate.slate_sise=3"]) == 2
    assert "slate_size" in capsys.readouterr().err
    assert main(["data", "simulate", f"workdir={tmp_path}"]) == 2  # no pairs yet
    assert "pairs" in capsys.readouterr().err
    assert main(["data", "synth", f"workdir={tmp_path}", "data.synth.n_categories=500"]) == 2
    assert "n_categories" in capsys.readouterr().err


def test_sigkill_leaves_no_half_artifact_and_rerun_is_identical(world, make_config, small_args, tmp_path):
    cfg = make_config(tmp_path)
    run_synth(cfg)
    data = Path(cfg.workdir) / "data"
    env = dict(os.environ)
    # the job itself, without the CLI's imports of every stage (the kill should land mid-write)
    code = ("import sys; from llm2ctr.config import load_config; from llm2ctr.data.jobs import run_simulate; "
            "run_simulate(load_config(None, sys.argv[1:]))")
    cmd = [sys.executable, "-c", code, f"workdir={tmp_path}", *small_args]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if any(p.name.startswith(".") and ".tmp-" in p.name for p in data.iterdir()):
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL  # killed while an artifact was being written
    for name in ("events", "counterfactual", "ground_truth"):
        d = data / name
        if d.exists():  # whatever is in place is complete
            verify_content(d)
    run_simulate(cfg)
    for name in ("events", "counterfactual", "ground_truth"):
        assert read_manifest(data / name)["content_hash"] == \
            read_manifest(world.stage_dir("data", name))["content_hash"]
    assert summarize(cfg)["events"]["rows"] > 0
