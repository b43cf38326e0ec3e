"""Build a tiny, randomly initialised Qwen2 teacher offline (tests, benchmarks, demos).

Why: no model hub is reachable in CI, yet every backend (transformers, sentence-transformers,
the vLLM engine and the vLLM OpenAI server) must be exercised on a real decoder model. The
tokenizer is a byte-level BPE trained on a few texts; it pads on the left and appends the eos
token, the convention of Qwen embedding models pooled on the last token. vLLM on CPU needs a head
dimension of 64, hence hidden 128 with 2 heads by default.
"""

from __future__ import annotations

import json
from pathlib import Path

EOS = "<|endoftext|>"

_DEFAULT_TEXTS = [
    "query: red running shoes item: lightweight red running shoes for men size 42",
    "query: usb c charger item: 65w gan usb-c charger with two ports",
    "query: wooden desk item: solid oak writing desk with drawers",
    "You are a relevance judge. Rate how well the item matches the search query on a 1-4 scale.",
    "Examples: exact substitute complement irrelevant. Target query and item follow.",
    "vintage leather jacket, wireless earbuds, ceramic coffee mug, gaming laptop 16gb ram",
    "0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ .,:;!?-_/()[]{}'\"",
]


def build_tiny_tokenizer(path: str | Path, vocab_size: int = 1000, texts: list[str] | None = None):
    """Train a byte-level BPE and save it as a left-padding, eos-appending fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator((texts or _DEFAULT_TEXTS) * 4, trainer=trainer)
    eos_id = tok.token_to_id(EOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS}", pair=f"$A $B {EOS}", special_tokens=[(EOS, eos_id)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS, pad_token=EOS, padding_side="left", model_max_length=4096
    )
    fast.save_pretrained(str(path))
    return fast


def build_tiny_qwen2(
    path: str | Path,
    hidden: int = 128,
    heads: int = 2,
    layers: int = 2,
    vocab: int = 1000,
    seed: int = 0,
    texts: list[str] | None = None,
    max_positions: int = 2048,
) -> Path:
    """Save a tiny Qwen2ForCausalLM + tokenizer + sentence-transformers last-token pooling files.

    The sentence-transformers files (modules.json, 1_Pooling, 2_Normalize) make the folder load
    with ``SentenceTransformer`` and tell vLLM to pool the last token and normalise.
    """
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = build_tiny_tokenizer(path, vocab, texts)
    cfg = Qwen2Config(
        vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=max_positions,
        tie_word_embeddings=True, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        bos_token_id=tok.eos_token_id, torch_dtype="float32",
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(cfg).eval()
    model.save_pretrained(str(path), safe_serialization=True)
    (path / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ], indent=2))
    (path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 512, "do_lower_case": False}))
    (path / "1_Pooling").mkdir(exist_ok=True)
    (path / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": hidden, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": False,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": True,
        "include_prompt": True,
    }, indent=2))
    (path / "2_Normalize").mkdir(exist_ok=True)
    return path
