"""Domain tokenizer for the student: a WordPiece trained with ``tokenizers`` on the pairs' text.

A ~12k vocabulary keeps the default encoder near 2M parameters (embeddings dominate). The result
is saved as a Hugging Face fast tokenizer (``AutoTokenizer.from_pretrained(folder)`` loads it) with a
BERT-style pair template, so ``tokenizer(queries, items)`` gives ``[CLS] q [SEP] item [SEP]`` with
segment ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a lower-cased, accent-stripped WordPiece on ``texts`` and wrap it for transformers."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True, clean_text=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, min_frequency=1, show_progress=False
    )
    tok.train_from_iterator(texts, trainer=trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        padding_side="right",
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


def train_tokenizer(texts: Iterable[str], vocab_size: int, out_dir: str | Path) -> PreTrainedTokenizerFast:
    """Train on ``texts`` and ``save_pretrained`` into ``out_dir`` (the caller makes it atomic)."""
    tokenizer = build_tokenizer(texts, vocab_size)
    tokenizer.save_pretrained(str(out_dir))
    return tokenizer


def encode_pairs(
    tokenizer: PreTrainedTokenizerFast,
    queries: Sequence[str],
    items: Sequence[str],
    max_length: int,
) -> dict[str, torch.Tensor]:
    """Batch ``[CLS] query [SEP] item [SEP]``: input_ids, token_type_ids, attention_mask tensors.

    Truncation takes from the longer side first, so a long item text cannot push the query out.
    """
    if len(queries) != len(items):
        raise ValueError(f"encode_pairs: {len(queries)} queries but {len(items)} items")
    enc = tokenizer(
        list(queries),
        list(items),
        max_length=max_length,
        truncation="longest_first",
        padding=True,
        return_token_type_ids=True,
        return_tensors="pt",
    )
    return {k: enc[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
