"""Tokenizer training (deterministic across processes), the one-segment pair template and truncation."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

from transformers import AutoTokenizer

from llm2ctr.student.tokenization import encode_pairs, pair_text, train_tokenizer

TEXTS = ["red running shoes", "blue leather wallet", "clear phone case", "running shoes for men"] * 5


def test_pair_template_is_one_segment_and_equals_the_single_string(tmp_path):
    train_tokenizer(TEXTS, 120, tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    b = encode_pairs(tok, ["red shoes", "wallet"], ["running shoes", "blue leather wallet"], 32)
    ids, tt, am = b["input_ids"], b["token_type_ids"], b["attention_mask"]
    assert ids.shape == tt.shape == am.shape and ids.shape[0] == 2
    cls, sep, pad = tok.cls_token_id, tok.sep_token_id, tok.pad_token_id
    row = ids[1][am[1].bool()].tolist()
    assert row[0] == cls and row[-1] == sep and row.count(sep) == 2
    assert tt.eq(0).all()  # one segment: what serving stacks send for a single string
    single = tok([pair_text("red shoes", "running shoes"), pair_text("wallet", "blue leather wallet")],
                 padding=True, return_tensors="pt")
    assert single["input_ids"].tolist() == ids.tolist() and single["token_type_ids"].eq(0).all()
    assert (ids[0][~am[0].bool()] == pad).all() and am[0, 0] == 1  # right padding
    assert tok.decode(row, skip_special_tokens=True) == "wallet blue leather wallet"


def test_truncation_keeps_the_query(tmp_path):
    tok = train_tokenizer(TEXTS, 120, tmp_path)
    b = encode_pairs(tok, ["red shoes"], [" ".join(["running shoes"] * 40)], 12)
    assert b["input_ids"].shape[1] == 12
    text = tok.decode(b["input_ids"][0], skip_special_tokens=True)
    assert text.startswith("red shoes")


TRAIN_IN_A_PROCESS = """
import sys
from llm2ctr.student.tokenization import train_tokenizer
texts = [f"{b} {c} {n} {w}" for b in ("acme", "zenit", "orbo", "kappa") for c in ("red", "blue", "black")
         for n in ("sneaker", "boots", "sandals", "charger", "cable", "wallets") for w in ("new", "sale", "eco")]
train_tokenizer(texts, int(sys.argv[2]), sys.argv[1])
"""


def test_training_is_deterministic_across_processes_and_threads(tmp_path):
    """Same texts -> byte-identical tokenizer files, whatever the process (Rust hash seeds) or threads."""
    digests = []
    for i, threads in enumerate(("1", "2", "2")):
        out = tmp_path / f"t{i}"
        env = {**os.environ, "RAYON_NUM_THREADS": threads, "TOKENIZERS_PARALLELISM": "true"}
        p = subprocess.run([sys.executable, "-c", TRAIN_IN_A_PROCESS, str(out), "150"], capture_output=True,
                           text=True, timeout=120, env=env)
        assert p.returncode == 0, p.stderr[-2000:]
        digests.append({f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(out.iterdir())})
    assert digests[0] == digests[1] == digests[2] and "tokenizer.json" in digests[0]
    vocab = AutoTokenizer.from_pretrained(tmp_path / "t0").get_vocab()
    assert len(vocab) > 60 and all(t in vocab for t in ("[PAD]", "[CLS]", "[SEP]", "##s"))
