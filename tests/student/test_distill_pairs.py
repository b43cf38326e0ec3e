"""Unlabelled distillation pairs: coverage, no labelled duplicates, query splits kept, deterministic."""

from __future__ import annotations

import shutil

import pyarrow.compute as pc

from llm2ctr.data.store import load_pairs
from llm2ctr.student.distill_pairs import build_distill_pairs, catalogue_from_pairs
from llm2ctr.student.jobs import run_distill_pairs, run_train

from .conftest import make_pairs, small_config, write_teacher_store


def test_pairs_cover_every_query_without_labelled_duplicates():
    pairs = make_pairs(20)
    cat = catalogue_from_pairs(pairs)
    t, counts = build_distill_pairs(pairs, cat, near_k=4, random_k=3, seed=0)
    labelled = set(zip(pairs["query"].to_pylist(), pairs["item_id"].to_pylist(), strict=True))
    got = list(zip(t["query"].to_pylist(), t["item_id"].to_pylist(), strict=True))
    assert not labelled & set(got) and len(set(got)) == len(got)
    assert set(t["query"].to_pylist()) == set(pairs["query"].to_pylist())
    assert t["rsl"].null_count == t.num_rows
    split_of = dict(zip(pairs["query"].to_pylist(), pairs["split"].to_pylist(), strict=True))
    assert all(split_of[q] == s for q, s in zip(t["query"].to_pylist(), t["split"].to_pylist(), strict=True))
    assert counts["near"] + counts["random"] == t.num_rows
    assert counts["near"] + counts["random"] + counts["skipped_labelled"] == 20 * 7
    # near neighbours share words with the query; random ones mostly do not
    near = t.filter(pc.equal(t["source"], "near"))
    shared = [len(set(q.split()) & set(i.split())) for q, i in zip(near["query"].to_pylist(), near["item_text"].to_pylist(), strict=True)]
    assert min(shared) >= 1
    t2, _ = build_distill_pairs(pairs, cat, near_k=4, random_k=3, seed=0)
    assert t2.equals(t)


def test_distill_pairs_feed_only_the_distillation_term(world, tmp_path):
    wd = tmp_path / "w"
    shutil.copytree(world, wd)
    cfg = small_config(wd, epochs=1, pairs_near_k=2, pairs_random_k=2)
    res = run_distill_pairs(cfg)
    dp = load_pairs(wd / "student" / "distill_pairs")
    assert dp.num_rows == res["rows"] > 0
    # embed half of them: the rest are counted as missing, not silently dropped
    write_teacher_store(wd / "teacher" / "distill_embeddings", dp.slice(0, dp.num_rows // 2))
    out = run_train(cfg, "sft+mse")
    c = out["counts"]
    assert c["distill_pairs"] == dp.num_rows
    assert c["distill_pairs_without_teacher"] == dp.num_rows - dp.num_rows // 2
    assert c["rows_unused_by_variant"] == c["distill_pairs_without_teacher"]
    sft = run_train(cfg, "sft")
    assert sft["counts"]["rows_unused_by_variant"] == dp.num_rows
