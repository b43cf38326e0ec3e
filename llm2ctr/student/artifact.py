"""The student folder: one layout that every serving stack loads, and the only code that knows it.

::

    config.json, model.safetensors   BertModel, the encoder (transformers, sentence-transformers, vLLM, TEI)
    tokenizer.json, tokenizer_config.json
    modules.json, sentence_bert_config.json, config_sentence_transformers.json, 1_Pooling/
                                     sentence-transformers: the encoder + masked mean pooling
    relevance/                       BertForSequenceClassification: same encoder + the 4-class head
    teacher_projection/              sentence-transformers Dense: pooled vector -> teacher space
    README.md, manifest.json, training_summary.json

Why the head lives in ``relevance/``: vLLM embeds only a plain ``BertModel`` checkpoint (its BERT
embedding loader rejects a checkpoint that carries ``bert.``-prefixed weights and a classifier,
and its sequence-classification BERT serves ``classify`` only), so the root is the encoder and
``AutoModelForSequenceClassification.from_pretrained(folder, subfolder="relevance")`` gives the
logits. Why the projection is not listed in ``modules.json``: vLLM (and TEI) apply every Dense
listed there, so the served vectors would silently switch to the teacher's space; it is appended
by the user who wants that space (docs/student.md). Module types use the classic
``sentence_transformers.models.*`` names, which every sentence-transformers release and vLLM read.

Other stages read the student through this module only: :func:`load_encoder` / :func:`load_student`
for a folder, :func:`model_dir` / :func:`eval_dir` for where they are, and :func:`encode_pairs`
(from tokenization.py) for the model's input batch.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from llm2ctr.artifacts import ArtifactError, atomic_write_json, read_manifest
from llm2ctr.config import Config
from llm2ctr.student.modeling import PairEncoder, Student
from llm2ctr.student.tokenization import encode_pairs as encode_pairs  # re-exported: the input batch

KIND = "student"
RELEVANCE = "relevance"
PROJECTION = "teacher_projection"
POOLING = "1_Pooling"
OLD_MODEL_TYPE = "llm2ctr-lightweight-encoder"


def tokenizer_dir(cfg: Config) -> Path:
    return cfg.stage_dir("student", "tokenizer")


def model_dir(cfg: Config, variant: str | None = None, seed: int | None = None) -> Path:
    """student/model (the configured variant at the configured seed: what the ranker loads),
    student/variants/<v> (other variants), student/seeds/<v>/seed-<k> (other seeds, for the table)."""
    variant = variant or cfg.student.variant
    name = variant.replace("+", "_")
    if seed is not None and seed != cfg.student.seed:
        return cfg.stage_dir("student", "seeds", name, f"seed-{seed}")
    if variant == cfg.student.variant:
        return cfg.stage_dir("student", "model")
    return cfg.stage_dir("student", "variants", name)


def export_dir(cfg: Config) -> Path:
    return cfg.stage_dir("student", "export")


EVAL_KIND = "student_eval"


def eval_dir(cfg: Config) -> Path:
    """student/eval: the distillation table (eval.json, eval.md, distillation.png), kind student_eval."""
    return cfg.stage_dir("student", "eval")


def write_student(student: Student, tokenizer, folder: str | Path, max_length: int) -> None:
    """Save ``student`` and its tokenizer in the layout above (the caller makes ``folder`` atomic)."""
    folder = Path(folder)
    student = student.to("cpu").eval()
    tokenizer.model_max_length = max_length
    student.relevance.bert.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    student.relevance.save_pretrained(str(folder / RELEVANCE))
    tokenizer.save_pretrained(str(folder / RELEVANCE))
    d = student.config.hidden_size
    atomic_write_json(folder / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": POOLING, "type": "sentence_transformers.models.Pooling"},
    ])
    atomic_write_json(folder / "sentence_bert_config.json", {"max_seq_length": max_length, "do_lower_case": False})
    atomic_write_json(folder / "config_sentence_transformers.json",
                      {"model_type": "SentenceTransformer", "prompts": {}, "default_prompt_name": None,
                       "similarity_fn_name": "cosine"})
    atomic_write_json(folder / POOLING / "config.json", {
        "word_embedding_dimension": d, "pooling_mode_cls_token": student.pooling == "cls",
        "pooling_mode_mean_tokens": student.pooling == "mean",
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": False, "include_prompt": True,
    })
    proj = student.projection
    atomic_write_json(folder / PROJECTION / "config.json", {
        "in_features": proj.in_features, "out_features": proj.out_features, "bias": True,
        "activation_function": "torch.nn.modules.linear.Identity",
    })
    save_file({"linear.weight": proj.weight.detach().contiguous(), "linear.bias": proj.bias.detach().contiguous()},
              str(folder / PROJECTION / "model.safetensors"))


def _open(folder: Path) -> None:
    """Refuse a folder written before the student became a stock BERT (saying what to do), or unfinished."""
    cfg_path = folder / "config.json"
    if cfg_path.is_file():
        model_type = json.loads(cfg_path.read_text(encoding="utf-8")).get("model_type")
        if model_type == OLD_MODEL_TYPE:
            raise ArtifactError(
                f"{folder}: this student uses the retired custom architecture '{OLD_MODEL_TYPE}' "
                "(llm2ctr before the stock-BERT student); its relevance head cannot be mapped onto "
                "BERT's, so it cannot be converted exactly. Re-train it: `llm2ctr student tokenizer` "
                "then `llm2ctr student train` (a few minutes on the quickstart data)."
            )
    if not (folder / RELEVANCE / "config.json").is_file():
        raise ArtifactError(f"{folder}: no {RELEVANCE}/config.json; not a student folder (re-run `llm2ctr student train`)")
    read_manifest(folder, KIND)


def _pooling(folder: Path) -> str:
    """The pooling mode sentence-transformers reads from ``1_Pooling/config.json``."""
    cfg = json.loads((folder / POOLING / "config.json").read_text(encoding="utf-8"))
    return "cls" if cfg.get("pooling_mode_cls_token") else "mean"


def load_student(folder: str | Path) -> tuple[Student, object]:
    """A trained student folder -> (Student in eval mode, tokenizer); manifest and format checked."""
    from transformers import AutoTokenizer, BertForSequenceClassification

    folder = Path(folder)
    _open(folder)
    relevance = BertForSequenceClassification.from_pretrained(str(folder / RELEVANCE))
    weights = load_file(str(folder / PROJECTION / "model.safetensors"))
    projection = nn.Linear(weights["linear.weight"].shape[1], weights["linear.weight"].shape[0])
    projection.load_state_dict({"weight": weights["linear.weight"], "bias": weights["linear.bias"]})
    return Student(relevance, projection, _pooling(folder)).eval(), AutoTokenizer.from_pretrained(str(folder))


def load_encoder(folder: str | Path, random_init: bool = False, seed: int = 0) -> tuple[PairEncoder, object]:
    """(encoder, tokenizer) for the ranker; ``random_init`` keeps the shape and drops the weights."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = Path(folder)
    _open(folder)
    if random_init:
        torch.manual_seed(seed)
        bert = BertModel(BertConfig.from_pretrained(str(folder)))
    else:
        bert = BertModel.from_pretrained(str(folder))
    return PairEncoder(bert, _pooling(folder)), AutoTokenizer.from_pretrained(str(folder))
