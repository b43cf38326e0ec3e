"""The encoder: size, padding invariance, save/load, Auto registration, heads."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModel

import llm2ctr  # noqa: F401  (registers the auto classes)
from llm2ctr.student.modeling import LightweightEncoderConfig, LightweightEncoderModel


def _tiny(**kw) -> LightweightEncoderModel:
    torch.manual_seed(0)
    cfg = LightweightEncoderConfig(vocab_size=50, d_model=32, num_layers=2, num_heads=4, ffn_dim=64,
                                   teacher_dim=12, dropout=0.0, **kw)
    return LightweightEncoderModel(cfg).eval()


def _batch() -> dict[str, torch.Tensor]:
    # two pairs of different lengths, right padded: [CLS]=2 q [SEP]=3 item [SEP]
    ids = torch.tensor([[2, 10, 11, 3, 20, 21, 22, 3], [2, 12, 3, 23, 3, 0, 0, 0]])
    tt = torch.tensor([[0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 1, 1, 0, 0, 0]])
    am = (torch.arange(8)[None, :] < torch.tensor([[8], [5]])).long()
    return {"input_ids": ids, "token_type_ids": tt, "attention_mask": am}


def test_default_size_is_the_papers_2m():
    n = sum(p.numel() for p in LightweightEncoderModel(LightweightEncoderConfig()).parameters())
    assert 1_500_000 <= n <= 2_500_000


def test_rejects_bad_config():
    with pytest.raises(ValueError, match="divisible"):
        LightweightEncoderConfig(d_model=30, num_heads=4)
    with pytest.raises(ValueError, match="pooling"):
        LightweightEncoderConfig(pooling="max")


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_outputs_do_not_depend_on_padding(pooling):
    m = _tiny(pooling=pooling)
    b = _batch()
    ref = m(**b)
    # more right padding
    pad = {k: torch.cat([v, torch.zeros(2, 5, dtype=v.dtype)], 1) for k, v in b.items()}
    # left padding of the second row (shift its 5 real tokens to the end)
    left = {k: v.clone() for k, v in b.items()}
    for k in left:
        left[k][1] = torch.cat([torch.zeros(3, dtype=b[k].dtype), b[k][1, :5]])
    for other in (pad, left):
        out = m(**other)
        for f in ("pooler_output", "logits", "projection"):
            torch.testing.assert_close(getattr(out, f), getattr(ref, f), atol=1e-5, rtol=1e-5)
    # a row alone gives the same vector as inside the padded batch
    solo = m.encode(**{k: v[1:2, :5] for k, v in b.items()})
    torch.testing.assert_close(solo, ref.pooler_output[1:2], atol=1e-5, rtol=1e-5)


def test_padding_tokens_never_leak():
    m = _tiny()
    b = _batch()
    junk = {k: v.clone() for k, v in b.items()}
    junk["input_ids"][1, 5:] = 7  # garbage behind the mask
    torch.testing.assert_close(m.encode(**junk), m.encode(**b))


def test_heads_shapes_and_segments_matter():
    m = _tiny()
    b = _batch()
    out = m(**b)
    assert out.pooler_output.shape == (2, 32) and out.logits.shape == (2, 4) and out.projection.shape == (2, 12)
    swapped = dict(b, token_type_ids=1 - b["token_type_ids"])
    assert not torch.allclose(m.encode(**swapped), out.pooler_output)


def test_save_load_round_trip_and_automodel(tmp_path):
    m = _tiny()
    m.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).model_type == "llm2ctr-lightweight-encoder"
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, LightweightEncoderModel)
    b = _batch()
    a, c = m(**b), loaded(**b)
    for f in ("last_hidden_state", "pooler_output", "logits", "projection"):
        assert torch.equal(getattr(a, f), getattr(c, f))
