"""Teacher stage entry points called by the CLI and ``llm2ctr pipeline run``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llm2ctr.artifacts import ArtifactError, read_manifest
from llm2ctr.config import Config
from llm2ctr.errors import ConfigError
from llm2ctr.rag.artifact import NEIGHBOURS_KIND, neighbours_dir
from llm2ctr.teacher.artifact import adapter_dir, embeddings_dir, plain_embeddings_dir

ADAPTER_KIND = "teacher_adapter"


def default_paths(cfg: Config) -> dict[str, Path]:
    return {
        "pairs": cfg.stage_dir("data", "pairs"),
        "neighbours": neighbours_dir(cfg),
        "embeddings": embeddings_dir(cfg),
        "plain_embeddings": plain_embeddings_dir(cfg),
        "adapter": adapter_dir(cfg),
    }


def part_dir(out: Path, part: tuple[int, int]) -> Path:
    return out.with_name(f"{out.name}.part-{part[0]}-of-{part[1]}")


def load_inputs(cfg: Config, pairs_dir: str | Path | None, neighbours_dir: str | Path | None,
                examples_dir: str | Path | None = None):
    """(pairs table, neighbours table or None, inputs for the manifest); errors say what to run first.

    With ``examples_dir`` (and RAG on) the inputs also hold ``examples``: the labelled table the
    neighbours point into (see :func:`load_examples`).
    """
    from llm2ctr.data.store import load_pairs, load_table

    paths = default_paths(cfg)
    pairs_path = Path(pairs_dir) if pairs_dir else paths["pairs"]
    pairs = load_pairs(pairs_path)
    inputs: dict[str, Path] = {"pairs": pairs_path}
    neighbours = None
    if cfg.teacher.use_rag:
        nb_path = Path(neighbours_dir) if neighbours_dir else paths["neighbours"]
        try:
            neighbours = load_table(nb_path, NEIGHBOURS_KIND)
        except ArtifactError as exc:
            raise ArtifactError(f"{exc}\nteacher.use_rag=true needs the RAG neighbours: run `llm2ctr rag index` "
                                "and `llm2ctr rag neighbours` first, or set teacher.use_rag=false") from None
        inputs["neighbours"] = nb_path
        if examples_dir:
            inputs["examples"] = Path(examples_dir)
    return pairs, neighbours, inputs


def load_examples(inputs: dict[str, Path]):
    """The table the neighbours' pair_ids point into: ``inputs['examples']`` if set, else None (= pairs)."""
    from llm2ctr.data.store import load_pairs

    return load_pairs(inputs["examples"]) if "examples" in inputs else None


def run_embed(cfg: Config, pairs_dir: str | Path | None = None, neighbours_dir: str | Path | None = None,
              shard: str | None = None, out_dir: str | Path | None = None, progress: bool = True,
              backend: Any = None, examples_dir: str | Path | None = None) -> dict[str, Any]:
    """Embed every pair's RAG prompt into ``{workdir}/teacher/embeddings`` (resumable).

    ``shard="i/n"`` embeds one part of n into ``embeddings.part-i-of-n``; merge with :func:`run_merge`.
    ``backend``: an already built backend to reuse (it must match ``cfg.teacher``; it is not closed).
    ``examples_dir``: the labelled pairs table the neighbours' pair_ids point into, when ``pairs_dir``
    is another table (distillation pairs + ``rag/distill_neighbours``); default None = the pairs
    table itself. It is an input of the store (manifest ``inputs``, store identity) when RAG is on.
    """
    from llm2ctr.teacher.backends import make_backend, resolve_model
    from llm2ctr.teacher.embed_job import embed_store, model_fingerprint, parse_part
    from llm2ctr.teacher.prompts import PromptSpec, build_prompts

    t = cfg.teacher
    if backend is not None and t.engine != "local":
        raise ConfigError("a backend built in this process cannot be shipped to Ray actors: leave `backend` unset "
                         "with teacher.engine=ray (each actor builds its own)")
    spec = PromptSpec.from_config(t)
    part = parse_part(shard)
    pairs, neighbours, inputs = load_inputs(cfg, pairs_dir, neighbours_dir, examples_dir)
    prompts = build_prompts(pairs, spec, neighbours, where=str(inputs.get("neighbours", "")),
                            examples=load_examples(inputs))
    adapter = None
    if t.use_adapter:
        adapter = default_paths(cfg)["adapter"]
        read_manifest(adapter, ADAPTER_KIND)
        inputs["adapter"] = adapter
    model = resolve_model(t.model) if t.backend != "openai" else f"{t.api_base}#{t.api_model or t.model}"
    identity = {
        "model": t.model if t.backend != "openai" else (t.api_model or t.model),
        "model_revision": t.revision or None,
        "model_fingerprint": model_fingerprint(model, t.revision),
        "backend": t.backend, "pooling": t.pooling, "normalize": t.normalize,
        "template": spec.template, "template_hash": spec.template_hash(),
        "inputs_hash": {k: read_manifest(p)["content_hash"] for k, p in inputs.items()},
    }
    out = Path(out_dir) if out_dir else default_paths(cfg)["embeddings"]
    if part is not None:
        out = part_dir(out, part)
    summary = embed_store(
        t, pairs.column("pair_id").to_pylist(), prompts, out,
        backend_factory=(lambda: make_backend(t, adapter)) if backend is None else (lambda: _Borrowed(backend)),
        identity=identity, part=part, inputs=inputs,
        progress=progress,
    )
    return summary


def run_embed_plain(cfg: Config, progress: bool = True) -> dict[str, Any]:
    """Embed the bare pairs (``query [SEP] item``, template pair-v1: no instruction, no examples)
    with the same teacher.

    A student sees no retrieved labels at inference, so a probe on these vectors is the honest
    ceiling for it; the distillation table puts it next to the probe on the RAG-prompt vectors.
    """
    import dataclasses

    plain = dataclasses.replace(cfg, teacher=dataclasses.replace(cfg.teacher, use_rag=False, template="pair-v1"))
    return run_embed(plain, out_dir=default_paths(cfg)["plain_embeddings"], progress=progress)


def run_merge(cfg: Config, parts: list[str | Path] | None = None, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Merge the ``--shard i/n`` parts next to the store (or the given ones) into the store."""
    from llm2ctr.teacher.merge import find_parts, merge_parts

    out = Path(out_dir) if out_dir else default_paths(cfg)["embeddings"]
    found = [Path(p) for p in parts] if parts else find_parts(out)
    return merge_parts(found, out)


def run_adapt(cfg: Config, pairs_dir: str | Path | None = None, neighbours_dir: str | Path | None = None,
              out_dir: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """LoRA-adapt the teacher on relevance classification; adapter to ``{workdir}/teacher/adapter``."""
    from llm2ctr.teacher.adapt import adapt_teacher

    pairs, neighbours, inputs = load_inputs(cfg, pairs_dir, neighbours_dir)
    out = Path(out_dir) if out_dir else default_paths(cfg)["adapter"]
    return adapt_teacher(cfg, pairs, neighbours, inputs, out, progress=progress)


class _Borrowed:
    """A caller's backend: used by the job but left open for the caller."""

    def __init__(self, backend: Any) -> None:
        self._b = backend
        self.name = backend.name

    @property
    def tokens_seen(self) -> int:
        return self._b.tokens_seen

    def embed(self, texts: list[str]):
        return self._b.embed(texts)

    def close(self) -> None:
        pass
