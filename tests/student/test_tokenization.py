"""Tokenizer training, the pair template and truncation."""

from __future__ import annotations

from transformers import AutoTokenizer

from llm2ctr.student.tokenization import encode_pairs, train_tokenizer

TEXTS = ["red running shoes", "blue leather wallet", "clear phone case", "running shoes for men"] * 5


def test_pair_template_segments_and_reload(tmp_path):
    train_tokenizer(TEXTS, 120, tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    b = encode_pairs(tok, ["red shoes", "wallet"], ["running shoes", "blue leather wallet"], 32)
    ids, tt, am = b["input_ids"], b["token_type_ids"], b["attention_mask"]
    assert ids.shape == tt.shape == am.shape and ids.shape[0] == 2
    cls, sep, pad = tok.cls_token_id, tok.sep_token_id, tok.pad_token_id
    row = ids[1][am[1].bool()].tolist()
    assert row[0] == cls and row[-1] == sep and row.count(sep) == 2
    first_sep = row.index(sep)
    assert tt[1][: first_sep + 1].eq(0).all() and tt[1][first_sep + 1 : len(row)].eq(1).all()
    assert (ids[0][~am[0].bool()] == pad).all() and am[0, 0] == 1  # right padding
    assert tok.decode(row, skip_special_tokens=True) == "wallet blue leather wallet"


def test_truncation_keeps_the_query(tmp_path):
    tok = train_tokenizer(TEXTS, 120, tmp_path)
    b = encode_pairs(tok, ["red shoes"], [" ".join(["running shoes"] * 40)], 12)
    assert b["input_ids"].shape[1] == 12
    text = tok.decode(b["input_ids"][0], skip_special_tokens=True)
    assert text.startswith("red shoes")
