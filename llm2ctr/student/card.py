"""The model card (README.md) written next to a trained student: what it is, how made, how good, limits."""

from __future__ import annotations

import json
from typing import Any


def model_card(info: dict[str, Any]) -> str:
    """Markdown with a YAML header the Hub understands; ``info`` is run_train's summary."""
    metrics = info.get("valid_metrics") or {}
    counts = info.get("counts") or {}
    mc = info.get("model_config") or {}
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: feature-extraction",
        "tags: [llm2ctr, ctr, relevance, distillation, prectr-v2]",
        "---",
        f"# llm2ctr student encoder ({info.get('variant', 'sft+mse')})",
        "",
        "A small query–item pair encoder distilled from an LLM teacher for CTR ranking "
        "(PRECTR-V2, arXiv 2602.20676). Input `[CLS] query [SEP] item [SEP]`; output a pooled "
        f"{mc.get('d_model', '?')}-d vector, 4-class relevance logits (rsl 1..4) and a projection to "
        "the teacher's embedding space.",
        "",
        "## Model",
        f"- layers {mc.get('num_layers')}, d_model {mc.get('d_model')}, heads {mc.get('num_heads')}, "
        f"FFN {mc.get('ffn_dim')}, vocabulary {mc.get('vocab_size')}, parameters {info.get('n_params'):,}",
        f"- pooling: {mc.get('pooling', 'mean')} over real tokens (independent of padding)",
        "",
        "## Training",
        f"- objective: `{info.get('variant')}` (SFT cross-entropy on labelled pairs + "
        f"{info.get('mse_weight')} x {info.get('distill_loss')} to the teacher through the projection)",
        f"- teacher: {info.get('teacher') or 'unknown'}",
        f"- data: {json.dumps(counts)}",
        f"- steps {info.get('steps')}, epochs {info.get('epochs_done')}, early stopped: {info.get('stopped_early')}",
        "",
        "## Validation metrics",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v:.4f} |" for k, v in metrics.items() if isinstance(v, float)]
    lines += [
        "",
        "## Use",
        "```python",
        "import llm2ctr  # registers the model class with AutoModel",
        "from transformers import AutoModel, AutoTokenizer",
        "from llm2ctr.student.tokenization import encode_pairs",
        "tok = AutoTokenizer.from_pretrained(path); model = AutoModel.from_pretrained(path).eval()",
        "vec = model.encode(**encode_pairs(tok, ['red shoes'], ['red running shoe, size 42'], 64))",
        "```",
        "",
        "## Intended use and limits",
        "- Intended: a text tower for CTR/relevance models (e.g. inside the PRECTR-V2 ranker, where "
        "it is fine-tuned further), or query–item relevance features for ranking.",
        "- The tokenizer and encoder are trained on one domain's pairs; text from other domains "
        "tokenizes poorly and its vectors mean little.",
        "- Agreement with the teacher is lower on queries never seen in training; see the eval report "
        "(`llm2ctr student eval`) for seen vs unseen cosine before relying on it for new traffic.",
        "- Relevance labels reflect the labelling guidelines of the training data, biases included.",
        "",
    ]
    return "\n".join(lines)
