"""The embedder: the real packaged MiniLM once, a tiny local model, the plain text-encoder callable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llm2ctr.cli.common import UserError
from llm2ctr.rag.config import RagConfig
from llm2ctr.rag.embedder import TextEncoder, embed_texts, load_embedder, pair_texts


def test_packaged_minilm_embeds_by_meaning():
    model = load_embedder("minilm")
    texts = pair_texts(
        ["red running shoes", "red running shoes", "red running shoes"],
        ["Nike red trail running shoe", "crimson sneakers for jogging", "stainless steel chef knife"],
    )
    assert texts[0] == "red running shoes [SEP] Nike red trail running shoe"
    v = embed_texts(model, texts, batch_size=2, show_progress=False)
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sims = v @ v.T
    assert sims[0, 1] > sims[0, 2] + 0.1  # shoes are nearer to sneakers than to a knife


def test_text_encoder_callable_loads_lazily(tiny_st_model: str):
    cfg = RagConfig(embedder=tiny_st_model, batch_size=4)
    enc = TextEncoder.from_config(cfg)
    assert enc._model is None  # nothing loaded until used
    v = enc(["red running shoes", "blue hat", "red running shoes"])
    assert v.shape == (3, 32) and enc.dim == 32
    np.testing.assert_allclose(v[0], v[2], atol=1e-6)
    assert enc([]).shape == (0, 32)
    # same vectors as the function interface (batch composition does not change them beyond float noise)
    np.testing.assert_allclose(v, embed_texts(load_embedder(tiny_st_model), ["red running shoes", "blue hat",
                                                                             "red running shoes"], 1, False),
                               atol=1e-5)


def test_bad_embedder_names_are_clear(tmp_path: Path):
    f = tmp_path / "model.bin"
    f.write_text("x")
    with pytest.raises(UserError, match="is not a model folder"):
        load_embedder(str(f))
    with pytest.raises(UserError, match="could not load embedder"):
        load_embedder(str(tmp_path))  # an empty folder is no model


def test_pair_texts_length_mismatch():
    with pytest.raises(ValueError, match="2 queries but 1 item texts"):
        pair_texts(["a", "b"], ["x"])
