"""Prompt template: shared prefix first, labelled examples from the neighbours, target last."""

from __future__ import annotations

import os

import pyarrow as pa
import pytest

from llm2ctr.teacher.config import TeacherConfig
from llm2ctr.teacher.prompts import PromptSpec, build_prompts

from .conftest import make_neighbours, make_pairs


def _pairs() -> pa.Table:
    return pa.table({"pair_id": ["a", "b", "c"], "query": ["red shoes", "red shoes", "desk"],
                     "item_text": ["red sneakers", "blue mug", "oak desk"], "rsl": pa.array([4, 1, 4], pa.int8())})


def _neighbours() -> pa.Table:
    return pa.table({"pair_id": ["a", "b"], "nb_pair_ids": [["c", "b"], ["a"]],
                     "nb_rsl": pa.array([[4, 1], [4]], pa.list_(pa.int8())),
                     "edge_pair_ids": [["b"], []], "edge_rsl": pa.array([[1], []], pa.list_(pa.int8()))})


def test_same_query_pairs_share_a_prefix_and_end_with_their_item():
    spec = PromptSpec.from_config(TeacherConfig())
    a, b, c = build_prompts(_pairs(), spec, _neighbours())
    shared = os.path.commonprefix([a, b])
    assert shared.startswith(TeacherConfig().instruction) and "Query: red shoes\n" in shared
    assert a.endswith("Item: red sneakers\nRelevance of the item to the query:")
    assert "- query: desk | item: oak desk | relevance: 4 (exact)" in a
    assert "Edge cases" in a and "relevance: 1 (irrelevant)" in a.split("Edge cases")[1]
    assert "Similar labelled pairs" not in c  # no neighbours row: header + target only


def test_without_rag_and_hash_identifies_the_template():
    cfg = TeacherConfig(use_rag=False)
    spec = PromptSpec.from_config(cfg)
    plain = build_prompts(_pairs(), spec, _neighbours())
    assert all("Similar" not in p for p in plain)
    other = PromptSpec.from_config(TeacherConfig(instruction="Rate it."))
    assert spec.template_hash() != other.template_hash() != PromptSpec.from_config(TeacherConfig()).template_hash()
    assert spec.template_hash() == PromptSpec.from_config(TeacherConfig(use_rag=False)).template_hash()


def test_limits_and_errors():
    spec = PromptSpec.from_config(TeacherConfig(max_examples=1, max_edge_cases=0))
    a = build_prompts(_pairs(), spec, _neighbours())[0]
    assert a.count("- query:") == 1 and "Edge cases" not in a
    bad = _neighbours().set_column(1, "nb_pair_ids", pa.array([["zz"], ["a"]]))
    with pytest.raises(ValueError, match=r"nb\.arrow: row 0, column nb_pair_ids: pair_id 'zz'"):
        build_prompts(_pairs(), spec, bad, where="nb.arrow")
    with pytest.raises(ValueError, match="unknown template 'v0'"):
        PromptSpec.from_config(TeacherConfig(template="v0"))


def test_duplicate_pairs_get_identical_prompts():
    pairs = make_pairs(60)
    prompts = build_prompts(pairs, PromptSpec.from_config(TeacherConfig()), make_neighbours(pairs))
    texts = list(zip(pairs.column("query").to_pylist(), pairs.column("item_text").to_pylist(), strict=True))
    by_text: dict = {}
    for t, p in zip(texts, prompts, strict=True):
        by_text.setdefault(t, set()).add(p)
    assert len(by_text) < len(texts) and all(len(v) == 1 for v in by_text.values())
