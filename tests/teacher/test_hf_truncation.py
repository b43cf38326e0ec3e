"""A RAG prompt longer than teacher.max_model_len loses its oldest examples, never its target pair:
both hf paths (sentence-transformers for the packaged MiniLM, transformers for LLMs) cut on the left."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llm2ctr.rag.embedder import resolve_embedder
from llm2ctr.teacher.backends.hf import HFBackend
from llm2ctr.teacher.config import TeacherConfig

TARGET = "\nItem: red running shoes"
OTHER_TARGET = "\nItem: blue electric kettle"
MAX_LEN = 6  # tokens, with [CLS]/[SEP]: fewer than either target has, so reading the end reads only the target


@pytest.mark.parametrize("impl", ["sentence_transformers", "transformers"])
def test_long_prompts_are_cut_on_the_left(impl: str, tiny_qwen: Path):
    if impl == "sentence_transformers":
        cfg, model = TeacherConfig(pooling="mean", max_model_len=MAX_LEN, hf_impl=impl), resolve_embedder("minilm")
    else:
        cfg, model = TeacherConfig(pooling="last", max_model_len=MAX_LEN, hf_impl=impl), str(tiny_qwen)
    backend = HFBackend(cfg, model)
    try:
        assert (backend.st is not None) == (impl == "sentence_transformers")
        a, b, c = backend.embed(["alpha " * 200 + TARGET, "omega " * 200 + TARGET, "alpha " * 200 + OTHER_TARGET])
    finally:
        backend.close()
    np.testing.assert_allclose(a, b, atol=1e-5)  # the starts differ, the ends are the same
    assert np.abs(a - c).max() > 1e-3  # the starts are the same, the ends differ
