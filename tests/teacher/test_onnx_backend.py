"""teacher.backend=onnx (the hf model on onnxruntime) gives the hf backend's vectors: same tokenisation,
length-sorted batches, left truncation and pooling; only the forward pass runs elsewhere."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from llm2ctr.teacher.backends import make_backend  # noqa: E402
from llm2ctr.teacher.config import TeacherConfig  # noqa: E402

PROMPTS = [
    "red running shoes [SEP] lightweight red running shoes size 42",
    "Judge how relevant the item is to the search query.\nQuery: usb c charger\n"
    "Similar labelled pairs:\n- query: usb charger | item: 65w gan usb-c charger | relevance: 4 (exact)\n"
    "Item: two port usb-c wall charger\nRelevance of the item to the query:",
    "mug",
    "wooden desk [SEP] " + "solid oak writing desk with drawers " * 12,  # longer than max_model_len: cut on the left
    "coffee mug [SEP] ceramic coffee mug 350ml",
]


@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_onnx_matches_hf(pooling: str):
    # batch_size 2 < 5 prompts: several batches, each padded to its own length
    cfg = TeacherConfig(backend="hf", model="minilm", pooling=pooling, max_model_len=48, batch_size=2)
    hf = make_backend(cfg)
    onnx = make_backend(TeacherConfig(**{**cfg.__dict__, "backend": "onnx"}))
    try:
        assert onnx.name == "onnx"
        a, b = hf.embed(PROMPTS), onnx.embed(PROMPTS)
        assert onnx.tokens_seen == hf.tokens_seen
    finally:
        hf.close()
        onnx.close()
    assert a.shape == b.shape == (len(PROMPTS), 384) and b.dtype == np.float32
    assert np.abs(a - b).max() < 1e-4  # float32 rounding only
    assert np.abs(a[0] - a[4]).max() > 1e-2  # and the prompts do differ
