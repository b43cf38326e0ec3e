"""The student as stock BERT parts: size, padding invariance, heads, the folder layout and old folders."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification, BertModel

from llm2ctr.artifacts import ArtifactError, atomic_dir, write_manifest
from llm2ctr.student.artifact import load_encoder, load_student, write_student
from llm2ctr.student.modeling import LABELS, Student, student_config
from llm2ctr.student.tokenization import build_tokenizer


def _tiny(pooling: str = "cls", vocab: int = 50) -> Student:
    torch.manual_seed(0)
    cfg = student_config(vocab, d_model=32, num_layers=2, num_heads=4, ffn_dim=64, max_length=16, dropout=0.0)
    return Student.from_config(cfg, teacher_dim=12, pooling=pooling).eval()


def _batch() -> dict[str, torch.Tensor]:
    # two pairs of different lengths, right padded: [CLS]=2 q [SEP]=3 item [SEP]; one segment
    ids = torch.tensor([[2, 10, 11, 3, 20, 21, 22, 3], [2, 12, 3, 23, 3, 0, 0, 0]])
    am = (torch.arange(8)[None, :] < torch.tensor([[8], [5]])).long()
    return {"input_ids": ids, "token_type_ids": torch.zeros_like(ids), "attention_mask": am}


def test_default_size_is_the_papers_2m_and_config_is_stock_bert():
    cfg = student_config(12000)
    assert cfg.model_type == "bert" and cfg.num_hidden_layers == 3 and cfg.hidden_size == 128
    assert cfg.num_attention_heads == 4 and cfg.intermediate_size == 256
    assert cfg.id2label == dict(enumerate(LABELS)) and LABELS[0] == "1:irrelevant" and LABELS[3] == "4:exact"
    n = sum(p.numel() for p in Student.from_config(cfg, 384).relevance.parameters())
    assert 1_500_000 <= n <= 2_500_000


def test_rejects_bad_config():
    with pytest.raises(ValueError, match="divisible"):
        student_config(100, d_model=30, num_heads=4)
    with pytest.raises(ValueError, match="pooling"):
        _tiny(pooling="max")


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_outputs_do_not_depend_on_padding(pooling):
    m = _tiny(pooling)
    b = _batch()
    ref = m(**b)
    pad = {k: torch.cat([v, torch.zeros(2, 5, dtype=v.dtype)], 1) for k, v in b.items()}
    out = m(**pad)
    for f in ("pooled", "logits", "projection"):
        torch.testing.assert_close(getattr(out, f), getattr(ref, f), atol=1e-5, rtol=1e-5)
    solo = m.encode(**{k: v[1:2, :5] for k, v in b.items()})
    torch.testing.assert_close(solo, ref.pooled[1:2], atol=1e-5, rtol=1e-5)


def test_padding_tokens_never_leak():
    m = _tiny("mean")
    b = _batch()
    junk = {k: v.clone() for k, v in b.items()}
    junk["input_ids"][1, 5:] = 7  # garbage behind the mask
    torch.testing.assert_close(m.encode(**junk), m.encode(**b))


def test_logits_are_the_stock_heads_and_pooled_feeds_the_projection():
    m = _tiny()
    b = _batch()
    out = m(**b)
    assert out.pooled.shape == (2, 32) and out.logits.shape == (2, 4) and out.projection.shape == (2, 12)
    torch.testing.assert_close(out.logits, m.relevance(**b).logits)
    torch.testing.assert_close(out.projection, m.projection(out.pooled))
    states = m.relevance.bert(**b).last_hidden_state
    torch.testing.assert_close(out.pooled, states[:, 0])


def _save(tmp_path, model: Student):
    tok = build_tokenizer(["red shoes", "blue running shirt", "leather wallet"], 50)
    folder = tmp_path / "student"
    with atomic_dir(folder) as tmp:
        write_student(model, tok, tmp, max_length=16)
        write_manifest(tmp, kind="student", stage="student")
    return folder, tok


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_folder_round_trip_and_stock_loaders(tmp_path, pooling):
    m = _tiny(pooling, vocab=50)
    folder, tok = _save(tmp_path, m)
    assert json.loads((folder / "config.json").read_text())["model_type"] == "bert"
    assert json.loads((folder / "relevance" / "config.json").read_text())["architectures"] == [
        "BertForSequenceClassification"]
    b = _batch()
    loaded, _ = load_student(folder)
    a, c = m(**b), loaded(**b)
    for f in ("pooled", "logits", "projection"):
        assert torch.equal(getattr(a, f), getattr(c, f))
    enc, _ = load_encoder(folder)
    assert torch.equal(enc.eval().encode(**b), a.pooled)
    # the stock classes read the same weights
    stock = AutoModelForSequenceClassification.from_pretrained(folder, subfolder="relevance").eval()
    torch.testing.assert_close(stock(**b).logits, a.logits)
    root = BertModel.from_pretrained(folder).eval()
    torch.testing.assert_close(root(**b).last_hidden_state, m.relevance.bert(**b).last_hidden_state)
    rand, _ = load_encoder(folder, random_init=True, seed=1)
    assert not torch.equal(rand.eval().encode(**b), a.pooled)


def test_old_custom_architecture_gets_a_clear_error(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llm2ctr-lightweight-encoder"}))
    with pytest.raises(ArtifactError, match="retired custom architecture.*llm2ctr student train"):
        load_student(folder)
    with pytest.raises(ArtifactError, match="retired custom architecture"):
        load_encoder(folder)
