"""Ranker test fixtures: one small simulated world (data artifacts + tiny student) per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from world import build_world  # noqa: E402

# small and fast: the suite's ranker tests share this config
FAST = [
    "ctr.batch_size=512",
    "ctr.epochs=3",
    "ctr.lr=3e-3",
    "ctr.hash_buckets=20011",
    "ctr.hidden_dims=[64,32]",
    "ctr.attn_dim=16",
    "ctr.shard_rows=4096",
    "ctr.num_threads=1",  # tiny batches: intra-op threads only add contention on 2 shared cores
]


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ctr_world")
    build_world(root, n_users=300, n_requests=3000, n_queries=200, seed=0)
    return root


@pytest.fixture()
def ctr_config(world):
    """A Config pointing at the session world; extra overrides as arguments."""
    from llm2ctr.config import load_config

    def make(*overrides: str, workdir: Path | None = None):
        return load_config(None, [f"workdir={workdir or world}", *FAST, *overrides])

    return make
