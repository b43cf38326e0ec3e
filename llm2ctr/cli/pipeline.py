"""`llm2ctr pipeline ...` commands."""

from __future__ import annotations

import argparse

from llm2ctr.cli.common import add_command, config_from_args


def _run(args: argparse.Namespace) -> int:
    from llm2ctr.pipeline import run_pipeline

    cfg = config_from_args(args)
    only = [s for s in (args.stages or "").split(",") if s]
    run_pipeline(cfg, only=only or None, force=args.force)
    return 0


def _status(args: argparse.Namespace) -> int:
    from llm2ctr.pipeline import STAGES, stage_state

    cfg = config_from_args(args)
    for stage in STAGES:
        if not stage.enabled(cfg):
            print(f"{stage.name:<22} {'off':<10}  {stage.help}")
            continue
        fresh, reason = stage_state(cfg, stage)
        print(f"{stage.name:<22} {'up to date' if fresh else 'to run':<10}  {reason}")
    return 0


def _size(args: argparse.Namespace) -> int:
    from llm2ctr.sizing import SizingInput, sizing_table

    inp = SizingInput(
        pairs=args.pairs,
        tokens_per_s=args.tokens_per_s,
        prompt_tokens=args.prompt_tokens,
        shared_prefix_tokens=args.shared_prefix_tokens,
        pairs_per_query=args.pairs_per_query,
        duplicate_share=args.duplicate_share,
    )
    print(f"teacher sizing: {inp}")
    print(sizing_table(inp))
    return 0


def register(verbs: argparse._SubParsersAction) -> None:
    from llm2ctr.pipeline import STAGE_NAMES

    p = add_command(
        verbs,
        "run",
        _run,
        "run every stage end to end; unchanged stages are skipped",
        description="Run data -> rag -> teacher -> student -> ranker -> report under cfg.workdir.\n"
        "A stage whose inputs and config are unchanged since its last run is skipped and says so;\n"
        "an interrupted run resumes from the stage that was running.\n\n"
        f"stages: {', '.join(STAGE_NAMES)}",
    )
    p.add_argument("--stages", help="comma-separated subset of stages to run (default: all)")
    p.add_argument("--force", action="store_true", help="re-run selected stages even if up to date")
    add_command(verbs, "status", _status, "show which stages are up to date and why")
    from llm2ctr.sizing import SizingInput

    d = SizingInput()
    s = add_command(
        verbs,
        "size",
        _size,
        "GPU-hours for a teacher-embedding job, with and without dedupe and prefix sharing",
        description="Estimate teacher GPU-hours from a measured prefill throughput.\n"
        "Measure tokens/s with benchmarks/bench_teacher.py (or vLLM's own benchmark) on your GPU.",
    )
    s.add_argument("--pairs", type=int, default=d.pairs, help="pairs to embed (paper: 1.6e9/day)")
    s.add_argument("--tokens-per-s", type=float, default=d.tokens_per_s, help="measured prefill tokens/s per GPU")
    s.add_argument("--prompt-tokens", type=int, default=d.prompt_tokens, help="mean prompt length in tokens")
    s.add_argument("--shared-prefix-tokens", type=int, default=d.shared_prefix_tokens,
                   help="tokens shared by all pairs of one query (instruction + retrieved examples)")
    s.add_argument("--pairs-per-query", type=float, default=d.pairs_per_query, help="pairs sharing a prefix")
    s.add_argument("--duplicate-share", type=float, default=d.duplicate_share, help="share of duplicate prompts")
