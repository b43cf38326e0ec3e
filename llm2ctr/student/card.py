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
        f"# llm2ctr student encoder ({info.get('variant')})",
        "",
        "A small query–item pair encoder distilled from an LLM teacher for CTR ranking "
        "(PRECTR-V2, arXiv 2602.20676): a stock BERT (`model_type: bert`) that plain `transformers`, "
        "`sentence-transformers`, vLLM and TEI load. Input: the string `query [SEP] item` (one "
        f"segment); output: a {mc.get('hidden_size', '?')}-d pair vector ({info.get('pooling', 'cls')} pooling), "
        "4-class relevance "
        "logits (`relevance/`) and a projection to the teacher's embedding space (`teacher_projection/`).",
        "",
        "## Model",
        f"- BERT: layers {mc.get('num_hidden_layers')}, hidden {mc.get('hidden_size')}, heads "
        f"{mc.get('num_attention_heads')}, intermediate {mc.get('intermediate_size')}, vocabulary "
        f"{mc.get('vocab_size')} (domain WordPiece), parameters {info.get('n_params'):,}",
        f"- pooling: {info.get('pooling', 'cls')} (sentence-transformers `Pooling`, independent of padding)",
        f"- relevance labels (`relevance/config.json` id2label): {', '.join((mc.get('id2label') or {}).values())}",
        "",
        "## Training",
        f"- objective: `{info.get('variant')}` (sft: class-weighted cross-entropy on labelled pairs; kd: KL to "
        f"the soft labels of a relevance head fitted on the teacher's vectors; mse: {info.get('mse_weight')} x "
        f"{info.get('distill_loss')} to the teacher through the projection)",
        f"- decision rule: {(info.get('decision_rule') or {}).get('rule', 'argmax')}",
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
        "from sentence_transformers import SentenceTransformer",
        "model = SentenceTransformer(path)  # a local folder or a Hub repo id",
        'vectors = model.encode(["red shoes [SEP] red running shoe, size 42"])  # student space',
        "",
        "# the teacher's space: append the shipped projection",
        "from sentence_transformers.models import Dense  # sentence-transformers >= 6: sentence_transformers.base.modules",
        'model.append(Dense.load(path, subfolder="teacher_projection"))',
        "",
        "# relevance logits (rsl 1..4) with plain transformers",
        "from transformers import AutoModelForSequenceClassification, AutoTokenizer",
        'tok = AutoTokenizer.from_pretrained(path, subfolder="relevance")',
        'clf = AutoModelForSequenceClassification.from_pretrained(path, subfolder="relevance")',
        'logits = clf(**tok(["red shoes [SEP] red running shoe, size 42"], return_tensors="pt")).logits',
        "```",
        "",
        "Served as an embedding model: `vllm serve PATH --runner pooling` (mean pooling is read from "
        "`1_Pooling/`), or text-embeddings-inference; send `query [SEP] item` strings.",
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
