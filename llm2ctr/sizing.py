"""How many GPU-hours a teacher-embedding job needs: tokens to process / measured tokens per second.

An embedding model only runs the prefill of each prompt, so cost is proportional to prompt
tokens. Two things cut it: **dedupe** (identical prompts computed once) and **prefix sharing**
(vLLM prefix caching: pairs of the same query share the instruction + retrieved examples, so that
part is computed once per query group). This module is the arithmetic behind the sizing table in
docs/scale-out.md; ``llm2ctr pipeline size`` prints it for your own measured numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

PAPER_DAILY_PAIRS = 1_600_000_000  # PRECTR-V2: ~1.6 billion query-item pairs per day


@dataclass(frozen=True)
class SizingInput:
    pairs: int = PAPER_DAILY_PAIRS
    tokens_per_s: float = 30_000.0  # measured prefill tokens/s of one GPU (or one server)
    prompt_tokens: int = 320  # mean prompt length
    shared_prefix_tokens: int = 240  # of which shared by all pairs of the same query
    pairs_per_query: float = 20.0  # pairs that share one prefix
    duplicate_share: float = 0.3  # share of prompts that are exact duplicates of another


def effective_tokens(inp: SizingInput, dedupe: bool, prefix_sharing: bool) -> float:
    """Prompt tokens actually computed for the whole job."""
    if not 0 <= inp.duplicate_share < 1:
        raise ValueError("duplicate_share must be in [0, 1)")
    if inp.shared_prefix_tokens > inp.prompt_tokens:
        raise ValueError("shared_prefix_tokens cannot exceed prompt_tokens")
    n = inp.pairs * ((1.0 - inp.duplicate_share) if dedupe else 1.0)
    per_pair = float(inp.prompt_tokens)
    if prefix_sharing:
        unique = inp.prompt_tokens - inp.shared_prefix_tokens
        per_pair = unique + inp.shared_prefix_tokens / max(inp.pairs_per_query, 1.0)
    return n * per_pair


def gpu_hours(inp: SizingInput, dedupe: bool, prefix_sharing: bool) -> float:
    return effective_tokens(inp, dedupe, prefix_sharing) / inp.tokens_per_s / 3600.0


def sizing_table(inp: SizingInput) -> str:
    """Markdown table of GPU-hours for the four combinations of dedupe and prefix sharing."""
    rows = [
        "| dedupe | prefix sharing | tokens computed | GPU-hours | GPUs for 24 h |",
        "|---|---|---:|---:|---:|",
    ]
    for dedupe in (False, True):
        for prefix in (False, True):
            tok = effective_tokens(inp, dedupe, prefix)
            hours = gpu_hours(inp, dedupe, prefix)
            rows.append(
                f"| {'yes' if dedupe else 'no'} | {'yes' if prefix else 'no'} | {tok:,.3g} | "
                f"{hours:,.0f} | {hours / 24:,.1f} |"
            )
    return "\n".join(rows)
