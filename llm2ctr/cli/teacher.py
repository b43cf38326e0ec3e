"""`llm2ctr teacher ...` commands: embed, embed-plain, merge, adapt, build-tiny."""

from __future__ import annotations

import argparse
import dataclasses
import json

from llm2ctr.cli.common import add_command, config_from_args


def _print(summary: dict) -> None:
    print(json.dumps(summary, indent=2, default=str))


def _embed(args: argparse.Namespace) -> int:
    from llm2ctr.teacher.jobs import run_embed

    cfg = config_from_args(args)
    if args.engine:
        cfg.teacher = dataclasses.replace(cfg.teacher, engine=args.engine)
    _print(run_embed(cfg, pairs_dir=args.pairs, neighbours_dir=args.neighbours, shard=args.shard,
                     out_dir=args.out, progress=not args.no_progress, examples_dir=args.examples))
    return 0


def _embed_plain(args: argparse.Namespace) -> int:
    from llm2ctr.teacher.jobs import run_embed_plain

    _print(run_embed_plain(config_from_args(args), progress=not args.no_progress))
    return 0


def _merge(args: argparse.Namespace) -> int:
    from llm2ctr.teacher.jobs import run_merge

    _print(run_merge(config_from_args(args), parts=args.parts, out_dir=args.out))
    return 0


def _adapt(args: argparse.Namespace) -> int:
    from llm2ctr.teacher.jobs import run_adapt

    _print(run_adapt(config_from_args(args), pairs_dir=args.pairs, neighbours_dir=args.neighbours, out_dir=args.out,
                     progress=not args.no_progress))
    return 0


def _build_tiny(args: argparse.Namespace) -> int:
    from llm2ctr.teacher.tiny_models import build_tiny_qwen2

    cfg = config_from_args(args)
    path = build_tiny_qwen2(args.path, hidden=args.hidden, heads=args.heads, layers=args.layers, seed=cfg.seed)
    print(path)
    return 0


def register(verbs: argparse._SubParsersAction) -> None:
    """Add this group's verbs."""
    p = add_command(
        verbs, "embed", _embed, "embed every pair's RAG prompt with the teacher into {workdir}/teacher/embeddings",
        description=(
            "Build the versioned RAG prompt of every pair (rag/neighbours + data/pairs), embed each unique\n"
            "prompt once with the configured backend (teacher.backend = hf | onnx | vllm | openai), in length-sorted\n"
            "batches, into sharded atomic writes. Re-run the same command after any interruption to resume.\n\n"
            "examples:\n"
            "  llm2ctr teacher embed --config configs/quickstart.yaml\n"
            "  llm2ctr teacher embed --config configs/qwen7b-vllm.yaml --engine ray  # a Ray cluster's GPUs\n"
            "  llm2ctr teacher embed --config configs/qwen7b-vllm.yaml --shard 0/4   # no cluster: 1 of 4 machines\n"
            "  llm2ctr teacher merge --config configs/qwen7b-vllm.yaml              # join the 4 parts"
        ),
    )
    p.add_argument("--shard", metavar="I/N", help="embed only part I of N (0-based) into embeddings.part-I-of-N")
    p.add_argument("--engine", choices=["local", "ray"],
                   help="who embeds the shards: this process, or a pool of Ray Data actors on teacher.ray_address "
                        "(teacher.ray_actors, ray_gpus_per_actor; needs `pip install llm2ctr[ray]`); default: "
                        "teacher.engine")
    p.add_argument("--pairs", metavar="DIR", help="pairs artifact (default {workdir}/data/pairs)")
    p.add_argument("--neighbours", metavar="DIR", help="neighbours artifact (default {workdir}/rag/neighbours)")
    p.add_argument("--examples", metavar="DIR",
                   help="labelled pairs the neighbours' ids point into, when --pairs is another table "
                        "(e.g. distillation pairs with rag/distill_neighbours); default: --pairs itself")
    p.add_argument("--out", metavar="DIR", help="store directory (default {workdir}/teacher/embeddings)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")

    p = add_command(verbs, "embed-plain", _embed_plain,
                    "embed the bare `query [SEP] item` pairs into {workdir}/teacher/plain_embeddings",
                    description="The same teacher on the bare pair text (template pair-v1: no instruction, no "
                    "retrieved examples),\nthe text the student reads. `student eval` fits its plain-pair teacher "
                    "probe on these vectors:\nthe ceiling for a student that sees no retrieved labels at inference.")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")

    p = add_command(verbs, "merge", _merge, "merge the parts of a `teacher embed --shard I/N` job into one store",
                    description="Merge embeddings.part-I-of-N folders (all N, finished) into {workdir}/teacher/"
                    "embeddings,\nchecking they come from the same teacher, prompt template and reduction.")
    p.add_argument("--parts", nargs="+", metavar="DIR", help="part stores (default: the ones next to --out)")
    p.add_argument("--out", metavar="DIR", help="store directory (default {workdir}/teacher/embeddings)")

    p = add_command(verbs, "adapt", _adapt, "LoRA-adapt the teacher on relevance labels; adapter to {workdir}/teacher/adapter",
                    description="Fine-tune LoRA adapters (peft, teacher.lora.*) of the teacher through its pooled "
                    "embedding\nwith a 4-way rsl head on the RAG prompts of labelled training pairs. Use it "
                    "with\n`llm2ctr teacher embed teacher.use_adapter=true`.")
    p.add_argument("--pairs", metavar="DIR", help="pairs artifact (default {workdir}/data/pairs)")
    p.add_argument("--neighbours", metavar="DIR", help="neighbours artifact (default {workdir}/rag/neighbours)")
    p.add_argument("--out", metavar="DIR", help="adapter directory (default {workdir}/teacher/adapter)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = add_command(verbs, "build-tiny", _build_tiny, "save a tiny random Qwen2 teacher (tests, demos, vLLM smoke tests)",
                    description="Build a tiny randomly initialised Qwen2 + byte-level BPE tokenizer offline "
                    "(head dim 64,\nwhich vLLM on CPU needs) with sentence-transformers last-token pooling files.")
    p.add_argument("path", help="output folder")
    p.add_argument("--hidden", type=int, default=128, help="hidden size (default 128)")
    p.add_argument("--heads", type=int, default=2, help="attention heads (default 2: head dim 64)")
    p.add_argument("--layers", type=int, default=2, help="layers (default 2)")
