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


SIMULATED_SIZES = [  # a small log from the real click simulator (query-type world, exploration slates, truth)
    "data.synth.n_categories=6", "data.synth.items_per_category=120", "data.synth.n_queries=150",
    "data.synth.pairs_per_query=16", "data.simulate.n_users=300", "data.simulate.n_requests=3000",
    "data.simulate.candidates_per_request=16", "data.simulate.slate_size=8",
]


@pytest.fixture(scope="session")
def simulated(tmp_path_factory):
    """synth -> simulate -> history with the data stage's own jobs, plus a tiny student."""
    from world import build_student

    from llm2ctr.config import load_config
    from llm2ctr.data.jobs import run_history, run_simulate, run_synth
    from llm2ctr.data.store import load_pairs

    root = tmp_path_factory.mktemp("simulated")
    cfg = load_config(None, [f"workdir={root}", *SIMULATED_SIZES, *FAST])
    run_synth(cfg)
    run_simulate(cfg)
    run_history(cfg)
    pairs = load_pairs(cfg.stage_dir("data", "pairs"))
    texts = pairs.column("query").to_pylist() + pairs.column("item_text").to_pylist()
    build_student(cfg.stage_dir("student", "model"), texts, 0)
    return cfg
