"""Domain tokenizer for the student: a WordPiece trained with ``tokenizers`` on the pairs' text.

A ~12k vocabulary keeps the default encoder near 2M parameters (embeddings dominate). The result
is a stock Hugging Face fast tokenizer (``tokenizer.json``) that every serving stack reads.

**One segment.** The student reads ``[CLS] query [SEP] item [SEP]`` with every token_type_id 0,
so the single string ``"query [SEP] item"`` (what TEI, vLLM, Infinity and ``SentenceTransformer
.encode`` send) tokenizes to exactly what the model was trained on; ``tokenizer(query, item)``
gives the same ids and types (it differs only when truncation bites: the pair form cuts the
longer side first).

**Deterministic.** The library's WordPiece trainer numbers continuation pieces (``##x``) in the
iteration order of a Rust hash map, which differs per process, and breaks ties between equally
frequent merges by those numbers: two runs on the same text gave different vocabularies. We
fix the numbering by declaring every continuation piece up front (sorted), then rebuild the
tokenizer from the learned vocabulary with only the real special tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PREFIX = "##"


def pair_text(query: str, item: str) -> str:
    """The single-string form of a pair that serving stacks send (same ids as the pair form)."""
    return f"{query} [SEP] {item}"


def _pipeline() -> Tokenizer:
    """An untrained WordPiece with BERT's normalizer and pre-tokenizer (lower-cased, no accents)."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix=PREFIX))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True, clean_text=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix=PREFIX)
    return tok


def _continuation_pieces(tok: Tokenizer, texts: list[str]) -> list[str]:
    """Every ``##c`` the trainer will create (a character after the first of a word), sorted."""
    chars: set[str] = set()
    for text in texts:
        for word, _ in tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(text)):
            chars.update(word[1:])
    return [PREFIX + c for c in sorted(chars)]


def build_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a WordPiece on ``texts`` (same texts -> same vocabulary and ids, in any process)."""
    texts = sorted(set(texts))
    trainer_tok = _pipeline()
    pinned = _continuation_pieces(trainer_tok, texts)
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS + pinned,
        min_frequency=1, show_progress=False, continuing_subword_prefix=PREFIX,
    )
    trainer_tok.train_from_iterator(texts, trainer=trainer)
    vocab = trainer_tok.get_vocab()
    tok = _pipeline()
    tok.model = models.WordPiece(vocab, unk_token="[UNK]", continuing_subword_prefix=PREFIX)
    tok.add_special_tokens(SPECIAL_TOKENS)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:0 [SEP]:0",
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

    Speed: with a fast tokenizer this calls the Rust ``encode_batch_fast`` (no character offsets)
    directly, configured by the tokenizer's own ``set_truncation_and_padding`` exactly as
    ``tokenizer(queries, items, ...)`` configures it, and builds the tensors with numpy: the same
    ids, types and mask as the ``tokenizer(...)`` call below (the fallback), at about half its cost,
    most of which was the Python conversion of ``Encoding`` objects into a ``BatchEncoding``.
    """
    if len(queries) != len(items):
        raise ValueError(f"encode_pairs: {len(queries)} queries but {len(items)} items")
    backend = getattr(tokenizer, "_tokenizer", None)
    if len(queries) and isinstance(backend, Tokenizer) and hasattr(tokenizer, "set_truncation_and_padding"):
        import numpy as np
        from transformers.tokenization_utils_base import PaddingStrategy, TruncationStrategy

        tokenizer.set_truncation_and_padding(
            padding_strategy=PaddingStrategy.LONGEST, truncation_strategy=TruncationStrategy.LONGEST_FIRST,
            max_length=max_length, stride=0, pad_to_multiple_of=None, padding_side=None,
        )
        split = getattr(tokenizer, "split_special_tokens", False)
        if backend.encode_special_tokens != split:
            backend.encode_special_tokens = split
        encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
        encs = encode(list(zip(queries, items, strict=True)), add_special_tokens=True, is_pretokenized=False)
        return {
            "input_ids": torch.from_numpy(np.array([e.ids for e in encs], dtype=np.int64)),
            "token_type_ids": torch.from_numpy(np.array([e.type_ids for e in encs], dtype=np.int64)),
            "attention_mask": torch.from_numpy(np.array([e.attention_mask for e in encs], dtype=np.int64)),
        }
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
