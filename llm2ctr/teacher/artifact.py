"""The teacher stage's artifacts, and the only door other stages use to read them.

Layout under ``{workdir}/teacher``::

    embeddings/             teacher_embeddings: the RAG prompts' vectors (store.py has the shard format)
    plain_embeddings/       teacher_embeddings: the bare pairs' vectors (the distillation table's probe)
    distill_embeddings/     teacher_embeddings: the unlabelled distillation pairs' prompts
    embeddings.part-I-of-N/ one part of a ``teacher embed --shard I/N`` job (``teacher merge`` joins them)
    adapter/                teacher_adapter: the LoRA adapter of ``teacher adapt`` (adapt.py)
    adapter.merged-<hash>/  the base model with that adapter merged in, built on first use

Readers: :func:`load_teacher_embeddings` (keys = pair_ids, float32 vectors), and
:func:`load_reduction` / :func:`restore_vectors` for a PCA-reduced store (all from store.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from llm2ctr.artifacts import atomic_dir, read_manifest
from llm2ctr.config import Config
from llm2ctr.teacher.store import KIND as EMBEDDINGS_KIND
from llm2ctr.teacher.store import (
    iter_teacher_shards,
    load_reduction,
    load_teacher_embeddings,
    restore_vectors,
)

__all__ = [
    "ADAPTER_KIND", "EMBEDDINGS_KIND", "adapter_dir", "distill_embeddings_dir", "embeddings_dir",
    "iter_teacher_shards", "load_reduction", "load_teacher_embeddings", "merged_model_dir",
    "plain_embeddings_dir", "restore_vectors",
]

ADAPTER_KIND = "teacher_adapter"


def embeddings_dir(cfg: Config) -> Path:
    return cfg.stage_dir("teacher", "embeddings")


def plain_embeddings_dir(cfg: Config) -> Path:
    """Teacher embeddings of the bare pairs (no retrieved examples): the ceiling a student can reach."""
    return cfg.stage_dir("teacher", "plain_embeddings")


def distill_embeddings_dir(cfg: Config) -> Path:
    return cfg.stage_dir("teacher", "distill_embeddings")


def adapter_dir(cfg: Config) -> Path:
    return cfg.stage_dir("teacher", "adapter")


def merged_model_dir(cfg_teacher, adapter: str | Path) -> Path:
    """A full model folder with the adapter merged (for vLLM / serving); built once per adapter.

    Lives here, not in adapt.py: the vllm backend needs it, and adapt.py imports the backends.
    """
    from llm2ctr.teacher.backends.hf import load_encoder
    from llm2ctr.teacher.packaged import resolve_packaged

    adapter = Path(adapter)
    m = read_manifest(adapter, ADAPTER_KIND)
    out = adapter.with_name(f"{adapter.name}.merged-{m['content_hash'][:12]}")
    if (out / "config.json").is_file():
        return out
    model_id = resolve_packaged(cfg_teacher.model)
    tok, net = load_encoder(cfg_teacher, model_id, adapter, "cpu")
    with atomic_dir(out) as tmp:
        net.save_pretrained(str(tmp), safe_serialization=True)
        tok.save_pretrained(str(tmp))
        src = Path(model_id)
        for name in ("modules.json", "sentence_bert_config.json", "1_Pooling", "2_Normalize"):
            if (src / name).is_dir():
                shutil.copytree(src / name, tmp / name)
            elif (src / name).is_file():
                shutil.copy2(src / name, tmp / name)
    return out
