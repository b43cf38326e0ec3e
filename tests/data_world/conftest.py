"""A small synthetic world (catalogue, pairs, events, counterfactual, truth, history) built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm2ctr.config import Config, load_config

SMALL = [
    "data.synth.items_per_category=300",
    "data.synth.n_queries=400",
    "data.simulate.n_users=400",
    "data.simulate.n_requests=4000",
]


def small_config(workdir: Path, *extra: str) -> Config:
    return load_config(None, [f"workdir={workdir}", *SMALL, *extra])


@pytest.fixture
def small_args() -> list[str]:
    """The small world's overrides, for CLI calls."""
    return list(SMALL)


@pytest.fixture
def make_config():
    """small_config, for tests that need their own workdir."""
    return small_config


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Config:
    from llm2ctr.data.jobs import run_history, run_simulate, run_synth

    cfg = small_config(tmp_path_factory.mktemp("world"))
    run_synth(cfg)
    run_simulate(cfg)
    run_history(cfg)
    return cfg
