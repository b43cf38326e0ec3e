"""The pipeline skips a stage only when its config and inputs are unchanged (real data stages)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm2ctr.config import load_config
from llm2ctr.pipeline import STAGES, run_pipeline, stage_state

TINY = [
    "data.synth.n_categories=4",
    "data.synth.items_per_category=60",
    "data.synth.n_queries=60",
    "data.synth.pairs_per_query=12",
    "data.simulate.n_users=80",
    "data.simulate.n_requests=400",
    "data.simulate.candidates_per_request=12",
    "data.simulate.slate_size=6",
]
DATA_STAGES = ["pairs", "simulate", "history"]


def _cfg(workdir: Path, *extra: str):
    return load_config(None, [f"workdir={workdir}", *TINY, *extra])


def test_unchanged_stages_are_skipped_and_changes_rerun_dependents(tmp_path: Path, capsys):
    cfg = _cfg(tmp_path)
    first = run_pipeline(cfg, only=DATA_STAGES)
    assert all(first[s] != "skipped" for s in DATA_STAGES)

    second = run_pipeline(cfg, only=DATA_STAGES)
    assert all(second[s] == "skipped" for s in DATA_STAGES)
    assert "skipped (inputs and config unchanged)" in capsys.readouterr().out

    # a simulator change re-runs simulate, and history because its input changed; pairs stay
    cfg2 = _cfg(tmp_path, "data.simulate.position_bias_power=1.0")
    third = run_pipeline(cfg2, only=DATA_STAGES)
    assert third["pairs"] == "skipped"
    assert third["simulate"] != "skipped"
    assert third["history"] != "skipped"


def test_deleted_output_is_rebuilt(tmp_path: Path):
    cfg = _cfg(tmp_path)
    run_pipeline(cfg, only=["pairs"])
    stage = next(s for s in STAGES if s.name == "pairs")
    assert stage_state(cfg, stage) == (True, "inputs and config unchanged")
    (tmp_path / "data" / "pairs" / "manifest.json").unlink()
    fresh, reason = stage_state(cfg, stage)
    assert not fresh and reason == "output data/pairs missing"
    assert run_pipeline(cfg, only=["pairs"])["pairs"] != "skipped"


def test_unknown_stage_is_an_error(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown pipeline stage.*'simulat'"):
        run_pipeline(_cfg(tmp_path), only=["simulat"])
