"""Teacher-stage fixtures: a tiny Qwen2 built offline, small pairs and neighbours artifacts."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

from llm2ctr.config import Config  # noqa: E402
from llm2ctr.data.store import save_table  # noqa: E402
from llm2ctr.teacher.tiny_models import build_tiny_qwen2  # noqa: E402

QUERIES = ["red running shoes", "usb c charger", "wooden desk", "leather jacket", "coffee mug", "gaming laptop",
           "wireless earbuds", "yoga mat", "steel water bottle", "desk lamp"]
ITEMS = ["lightweight red running shoes size 42", "65w gan usb-c charger two ports", "solid oak writing desk",
         "vintage brown leather jacket", "ceramic coffee mug 350ml", "gaming laptop 16gb ram rtx",
         "noise cancelling wireless earbuds", "non slip yoga mat 6mm", "insulated steel bottle 1l",
         "led desk lamp dimmable", "blue running socks", "phone case clear"]


def make_pairs(n: int, seed: int = 0, dup_every: int = 7) -> pa.Table:
    """n pairs over a few queries; every ``dup_every``-th pair repeats an earlier (query, item)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        if dup_every and i % dup_every == dup_every - 1 and rows:
            q, it, r = rows[rng.randrange(len(rows))][1:4]
        else:
            q = rng.choice(QUERIES) + ("" if i % 3 else f" {i % 11}")
            j = rng.randrange(len(ITEMS))
            it = ITEMS[j] + f" #{rng.randrange(50)}" * (i % 5)
            r = 1 + j % 4  # the label follows the item: something LoRA can learn
        rows.append((f"p{i:05d}", q, it, r))
    return pa.table({
        "pair_id": [r[0] for r in rows], "query": [r[1] for r in rows], "item_id": [f"i{i}" for i in range(n)],
        "item_text": [r[2] for r in rows], "rsl": pa.array([r[3] for r in rows], pa.int8()),
        "category": ["c" + str(i % 3) for i in range(n)],
        "split": [("train", "train", "train", "valid", "test")[i % 5] for i in range(n)],
    })


def make_neighbours(pairs: pa.Table, k: int = 3, seed: int = 0) -> pa.Table:
    """Neighbours drawn from the training split, a function of the pair's text (as real retrieval is)."""
    ids = pairs.column("pair_id").to_pylist()
    texts = [q + "|" + t for q, t in zip(pairs.column("query").to_pylist(), pairs.column("item_text").to_pylist(),
                                         strict=True)]
    rsl = dict(zip(ids, pairs.column("rsl").to_pylist(), strict=True))
    train = [p for p, s in zip(ids, pairs.column("split").to_pylist(), strict=True) if s == "train"]
    nb, eg = [], []
    text_of = dict(zip(ids, texts, strict=True))
    for text in texts:
        rng = random.Random(f"{seed}:{text}")
        cands = [t for t in rng.sample(train, min(len(train), k + 4)) if text_of[t] != text]
        nb.append(cands[:k])
        eg.append(cands[k:k + 1])
    return pa.table({
        "pair_id": ids,
        "nb_pair_ids": nb, "nb_rsl": pa.array([[rsl[x] for x in r] for r in nb], pa.list_(pa.int8())),
        "nb_sim": pa.array([[0.9] * len(r) for r in nb], pa.list_(pa.float32())),
        "edge_pair_ids": eg, "edge_rsl": pa.array([[rsl[x] for x in r] for r in eg], pa.list_(pa.int8())),
        "edge_sim": pa.array([[0.8] * len(r) for r in eg], pa.list_(pa.float32())),
    })


def write_workdir(root: Path, n: int, seed: int = 0) -> Path:
    """A workdir with data/pairs and rag/neighbours artifacts of n pairs."""
    pairs = make_pairs(n, seed)
    save_table(pairs, root / "data" / "pairs", kind="pairs", stage="test")
    save_table(make_neighbours(pairs, seed=seed), root / "rag" / "neighbours", kind="neighbours", stage="test")
    return root


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread (as a subprocess with OMP_NUM_THREADS=1), so results compare bit for bit."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_qwen2(tmp_path_factory.mktemp("tiny_qwen2") / "model")


@pytest.fixture(scope="session")
def small_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_workdir(tmp_path_factory.mktemp("wd"), 120)


def tiny_config(workdir: Path, model: Path, **teacher: object) -> Config:
    cfg = Config(workdir=str(workdir))
    cfg.teacher.model = str(model)
    cfg.teacher.pooling = "last"
    cfg.teacher.batch_size = 16
    cfg.teacher.shard_size = 40
    cfg.teacher.store_dtype = "float32"
    for k, v in teacher.items():
        setattr(cfg.teacher, k, v)
    return cfg


def adapt_config(workdir: Path, model: Path) -> Config:
    cfg = tiny_config(workdir, model, max_model_len=128)
    cfg.teacher.lora.r = 8
    cfg.teacher.lora.lr = 5e-3
    cfg.teacher.lora.epochs = 4
    cfg.teacher.lora.batch_size = 8
    return cfg


@pytest.fixture(scope="session")
def adapted(tmp_path_factory: pytest.TempPathFactory, tiny_qwen: Path) -> tuple[Config, dict]:
    """A workdir whose teacher/adapter was trained by ``run_adapt`` on the tiny Qwen2."""
    from llm2ctr.teacher.jobs import run_adapt

    cfg = adapt_config(write_workdir(tmp_path_factory.mktemp("adapt"), 120), tiny_qwen)
    return cfg, run_adapt(cfg, progress=False)
