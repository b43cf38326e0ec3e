"""The distillation corpus end to end: RAG examples from labelled training pairs only, teacher
prompts built from them, new queries that are never held-out labelled ones, splits kept.

One pipeline run (rag_index -> rag_distill_neighbours -> teacher_distill) with the packaged
MiniLM as the RAG embedder and a tiny Qwen2 as the teacher serves every test of the module.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from llm2ctr.artifacts import read_manifest
from llm2ctr.config import Config, load_config
from llm2ctr.data.store import load_pairs, load_table, save_table
from llm2ctr.pipeline import run_pipeline
from llm2ctr.rag.jobs import run_external_neighbours
from llm2ctr.student.distill_pairs import (
    build_distill_pairs,
    catalogue_from_pairs,
    new_queries,
    normalise_query,
)
from llm2ctr.teacher.prompts import PromptSpec, build_prompts
from llm2ctr.teacher.store import load_teacher_embeddings
from llm2ctr.teacher.tiny_models import build_tiny_qwen2

from .conftest import BRANDS, CATS, COLORS, make_pairs

EXAMPLES_TITLE = "Similar labelled pairs:\n"


def _events(pairs: pa.Table) -> tuple[pa.Table, list[str], list[str]]:
    """An impression log whose queries are held-out labelled ones, unseen ones, and test-period ones."""
    held_out = sorted({q for q, s in zip(pairs["query"].to_pylist(), pairs["split"].to_pylist(), strict=True)
                       if s != "train"})
    labelled = {normalise_query(q) for q in pairs["query"].to_pylist()}
    unseen = [f"{b} {c} {n}" for b in BRANDS for c in COLORS for ns in CATS.values() for n in ns]
    unseen = [q for q in unseen if q not in labelled]
    train_period, test_period = unseen[:6], unseen[6:9]
    # held-out queries are the most frequent, some written with other case/spacing: the guard must drop
    # them (it compares normalised texts), not the count cap
    rows = ([(q.upper().replace(" ", "  "), "train") for q in held_out[:5] for _ in range(3)]
            + [(q, "train") for q in held_out for _ in range(3)]
            + [(q, "train") for q in train_period for _ in range(2)] + [(q, "test") for q in test_period])
    n = len(rows)
    table = pa.table({
        "request_id": [f"r{i}" for i in range(n)], "user_id": ["u0"] * n, "ts": pa.array(range(n), pa.int64()),
        "query": [q for q, _ in rows], "category": ["c"] * n, "item_id": ["it0"] * n, "pair_id": ["p0-0"] * n,
        "position": pa.array([1] * n, pa.int16()), "click": pa.array([0] * n, pa.int8()),
        "rsl": pa.array([None] * n, pa.int8()), "split": [s for _, s in rows],
    })
    return table, train_period, test_period


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict:
    import faiss
    import torch

    threads = faiss.omp_get_max_threads(), torch.get_num_threads()
    faiss.omp_set_num_threads(1)
    torch.set_num_threads(1)
    try:
        root = tmp_path_factory.mktemp("distill_corpus")
        cfg = Config(workdir=str(root / "w"))
        cfg.pipeline.distill_pairs = True
        cfg.rag.chunk_size = 128  # several resumable chunks
        cfg.teacher.model = str(build_tiny_qwen2(root / "qwen"))
        cfg.teacher.pooling = "last"
        cfg.teacher.batch_size = 32
        cfg.teacher.store_dtype = "float32"
        cfg.teacher.max_model_len = 256
        pairs = make_pairs(n_queries=40, items_per_query=6)
        pairs_dir = cfg.stage_dir("data", "pairs")
        save_table(pairs, pairs_dir, kind="pairs", stage="test")
        events, train_period, test_period = _events(pairs)
        save_table(events, cfg.stage_dir("data", "events"), kind="events", stage="test")
        nq = new_queries(pairs_dir, 4, events_dir=cfg.stage_dir("data", "events"), seed=0)
        dp, counts = build_distill_pairs(pairs, catalogue_from_pairs(pairs), near_k=2, random_k=1, seed=0,
                                         new_queries=nq.queries)
        save_table(dp, cfg.stage_dir("student", "distill_pairs"), kind="pairs", stage="test", counts=counts)
        ran = run_pipeline(cfg, only=["rag_index", "rag_distill_neighbours", "teacher_distill"])
        return {"cfg": cfg, "pairs": pairs, "dp": load_pairs(cfg.stage_dir("student", "distill_pairs")),
                "counts": counts, "nq": nq, "ran": ran, "train_period": train_period, "test_period": test_period,
                "nb": load_table(cfg.stage_dir("rag", "distill_neighbours"), "neighbours")}
    finally:
        faiss.omp_set_num_threads(threads[0])
        torch.set_num_threads(threads[1])


def _shown(nb: pa.Table) -> list[tuple[str, list[str]]]:
    return [(r["pair_id"], r["nb_pair_ids"] + r["edge_pair_ids"]) for r in nb.to_pylist()]


def _assert_no_leak(pairs: pa.Table, dp: pa.Table, nb: pa.Table, exclude_same_query: bool) -> int:
    by_id = {r["pair_id"]: r for r in pairs.to_pylist()}
    me_of = {r["pair_id"]: r for r in dp.to_pylist()}
    same_query = 0
    for pid, shown in _shown(nb):
        me = me_of[pid]
        for x in shown:
            o = by_id[x]  # every example is a row of data/pairs ...
            assert o["split"] == "train" and o["rsl"] is not None, (me, o)  # ... labelled, train split
            same = normalise_query(o["query"]) == normalise_query(me["query"])
            same_query += same
            if exclude_same_query:
                assert not same, (me, o)
    return same_query


def test_rag_examples_of_distill_pairs_are_labelled_train_pairs(corpus):
    cfg, pairs, dp, nb = corpus["cfg"], corpus["pairs"], corpus["dp"], corpus["nb"]
    assert corpus["ran"]["rag_distill_neighbours"]["pairs"] == dp.num_rows
    assert nb["pair_id"].to_pylist() == dp["pair_id"].to_pylist()  # one row per distill pair, in order
    assert all(len(r["nb_pair_ids"]) == cfg.rag.k_neighbours for r in nb.to_pylist())
    assert sum(len(r["edge_pair_ids"]) for r in nb.to_pylist()) > 0
    splits = set(dp["split"].to_pylist())
    assert splits == {"train", "valid", "test"}  # distill pairs of held-out queries were searched too
    assert _assert_no_leak(pairs, dp, nb, exclude_same_query=True) == 0
    m = read_manifest(cfg.stage_dir("rag", "distill_neighbours"), "neighbours")
    assert set(m["inputs"]) == {"pairs", "examples", "rag_index"}
    assert m["inputs"]["examples"]["content_hash"] == read_manifest(cfg.stage_dir("data", "pairs"))["content_hash"]
    assert not list(Path(cfg.workdir, "rag").glob(".*work"))  # work chunks removed when done


def test_same_query_switch_is_honoured(corpus, tmp_path: Path):
    """Without the same-query exclusion the labelled pairs of a train query are its nearest examples:
    so the check above is not vacuous."""
    cfg = dataclasses.replace(corpus["cfg"], rag=dataclasses.replace(corpus["cfg"].rag, exclude_same_query=False))
    train_dp = corpus["dp"].filter(pa.compute.equal(corpus["dp"]["split"], "train")).slice(0, 60)
    save_table(train_dp, tmp_path / "dp", kind="pairs", stage="test")
    run_external_neighbours(cfg, tmp_path / "dp", out_dir=tmp_path / "nb")
    nb = load_table(tmp_path / "nb", "neighbours")
    assert _assert_no_leak(corpus["pairs"], train_dp, nb, exclude_same_query=False) > 0


def test_teacher_prompts_of_distill_pairs_show_data_pairs_examples(corpus):
    cfg, pairs, dp, nb = corpus["cfg"], corpus["pairs"], corpus["dp"], corpus["nb"]
    spec = PromptSpec.from_config(cfg.teacher)
    prompts = build_prompts(dp, spec, nb, examples=pairs)
    by_id = {r["pair_id"]: r for r in pairs.to_pylist()}
    for p, row, d in zip(prompts, nb.to_pylist(), dp.to_pylist(), strict=True):
        assert EXAMPLES_TITLE in p and p.endswith(f"Item: {d['item_text']}\nRelevance of the item to the query:")
        for x in row["nb_pair_ids"][: spec.max_examples]:
            o = by_id[x]
            assert f"- query: {o['query']} | item: {o['item_text']} | relevance: {o['rsl']} (" in p
    # the old behaviour (neighbour ids looked up in the distill pairs themselves) cannot build them
    with pytest.raises(ValueError, match="is not in the pairs table"):
        build_prompts(dp, spec, nb)
    # the teacher store: every distill pair, built from those prompts (examples recorded as an input)
    out = corpus["cfg"].stage_dir("teacher", "distill_embeddings")
    keys, vecs = load_teacher_embeddings(out)
    assert sorted(keys) == sorted(dp["pair_id"].to_pylist()) and np.isfinite(vecs).all()
    m = read_manifest(out)
    assert m["inputs"]["examples"]["content_hash"] == read_manifest(cfg.stage_dir("data", "pairs"))["content_hash"]
    assert m["inputs"]["neighbours"]["path"] == str(cfg.stage_dir("rag", "distill_neighbours"))
    assert set(m["inputs_hash"]) == {"pairs", "neighbours", "examples"}


def test_new_queries_never_include_held_out_labelled_queries(corpus):
    pairs, dp, nq = corpus["pairs"], corpus["dp"], corpus["nq"]
    held_out = {normalise_query(q) for q, s in zip(pairs["query"].to_pylist(), pairs["split"].to_pylist(), strict=True)
                if s != "train"}
    labelled = {normalise_query(q) for q in pairs["query"].to_pylist()}
    # the most frequent train-period queries (ties by text), none of the test period
    assert nq.queries == sorted(corpus["train_period"])[:4]
    assert nq.counts["from_events"] == 4 and nq.counts["dropped_labelled"] > 0 and "events" in nq.inputs
    assert not {normalise_query(q) for q in nq.queries} & labelled
    new_rows = dp.filter(dp["new_query"])
    assert set(new_rows["query"].to_pylist()) == set(nq.queries) and corpus["counts"]["new_queries"] == 4
    assert set(new_rows["split"].to_pylist()) == {"train"}
    train_queries = {normalise_query(q) for q, s in zip(dp["query"].to_pylist(), dp["split"].to_pylist(), strict=True)
                     if s == "train"}
    assert not train_queries & held_out
    # build_distill_pairs guards on its own: a held-out query handed in as "new" is dropped
    sneaky = [next(iter(held_out)).upper(), "acme blue lamp zz"]
    t, c = build_distill_pairs(pairs, catalogue_from_pairs(pairs), 1, 0, new_queries=sneaky)
    assert c["new_queries"] == 1 and c["new_queries_dropped"] == 1
    assert set(t.filter(t["new_query"])["query"].to_pylist()) == {"acme blue lamp zz"}


def test_distill_pairs_of_held_out_queries_keep_their_split(corpus):
    pairs, dp = corpus["pairs"], corpus["dp"]
    split_of = dict(zip(pairs["query"].to_pylist(), pairs["split"].to_pylist(), strict=True))
    for q, s, new in zip(dp["query"].to_pylist(), dp["split"].to_pylist(), dp["new_query"].to_pylist(), strict=True):
        assert s == ("train" if new else split_of[q])
    for split in ("valid", "test"):
        assert dp.filter(pa.compute.equal(dp["split"], split)).num_rows > 0


def test_new_queries_from_the_synthetic_generator(tmp_path: Path):
    from llm2ctr.data.jobs import run_synth

    cfg = load_config(None, [f"workdir={tmp_path}", "data.synth.n_categories=4", "data.synth.items_per_category=60",
                             "data.synth.n_queries=60", "data.synth.pairs_per_query=12"])
    run_synth(cfg)
    pairs = load_pairs(cfg.stage_dir("data", "pairs"))
    labelled = {normalise_query(q) for q in pairs["query"].to_pylist()}
    nq = new_queries(cfg.stage_dir("data", "pairs"), 30, events_dir=cfg.stage_dir("data", "events"), seed=1)
    assert len(nq.queries) == nq.counts["from_synth"] == 30 and nq.counts["from_events"] == 0
    assert len({normalise_query(q) for q in nq.queries}) == 30
    assert not {normalise_query(q) for q in nq.queries} & labelled
    assert nq.counts["dropped_labelled"] > 0  # the generator does propose labelled queries: the guard worked
    again = new_queries(cfg.stage_dir("data", "pairs"), 30, seed=1)
    assert again.queries == nq.queries  # deterministic
    assert new_queries(cfg.stage_dir("data", "pairs"), 0).queries == []
