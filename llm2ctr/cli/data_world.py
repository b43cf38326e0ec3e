"""`llm2ctr data synth|simulate|history|summary`: the synthetic world (thin; logic in llm2ctr.data.jobs)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from llm2ctr.cli.common import add_command, config_from_args


def _print_job(func: str, **paths: str) -> Callable[[argparse.Namespace], int]:
    """A verb that runs ``llm2ctr.data.jobs.<func>`` and prints its summary."""

    def run(args: argparse.Namespace) -> int:
        from llm2ctr.data import jobs

        out = getattr(jobs, func)(config_from_args(args), **{k: getattr(args, a) for k, a in paths.items()})
        print(json.dumps(out, indent=2))
        return 0

    return run


_synth = _print_job("run_synth")
_simulate = _print_job("run_simulate", pairs_dir="pairs")
_history = _print_job("run_history", events_dir="events")


def _summary(args: argparse.Namespace) -> int:
    from llm2ctr.data.jobs import summarize
    from llm2ctr.data.world_summary import format_summary

    out = summarize(config_from_args(args), events_dir=args.events)
    print(json.dumps(out, indent=2) if args.json else format_summary(out))
    return 0


def register(verbs: argparse._SubParsersAction) -> None:
    """Add this group's verbs."""
    add_command(
        verbs, "synth", _synth, "generate a synthetic catalogue and labelled query-item pairs",
        "Write {workdir}/data/catalogue and {workdir}/data/pairs (split by query).\n"
        "Labels: 4 exact, 3 substitute, 2 complement, 1 irrelevant (docs/data-simulator.md).\n"
        "Settings: data.synth.* and data.split.* (e.g. data.synth.n_queries=2000).",
    )
    p = add_command(
        verbs, "simulate", _simulate, "simulate users, exposures and clicks over a pairs table",
        "Write {workdir}/data/events, data/counterfactual and data/ground_truth from a pairs\n"
        "table (the synthetic one by default, or any imported one via --pairs).\n"
        "Settings: data.simulate.* (e.g. data.simulate.n_requests=100000).",
    )
    p.add_argument("--pairs", metavar="DIR", default=None, help="pairs artifact (default {workdir}/data/pairs)")
    p = add_command(
        verbs, "history", _history, "build user histories and cross-user sequences per request",
        "Write {workdir}/data/history: per request the user's last m behaviours before it and the\n"
        "top-k behaviours of the category's most active training-window users by query similarity.\n"
        "Settings: data.history.* (e.g. data.history.max_user_history=50).",
    )
    p.add_argument("--events", metavar="DIR", default=None, help="events artifact (default {workdir}/data/events)")
    p = add_command(
        verbs, "summary", _summary, "print rows, label mix, CTR by position/rsl, rsl-4 share, cold start",
        "Summarise {workdir}/data/pairs, data/events and data/history (whichever exist).",
    )
    p.add_argument("--events", metavar="DIR", default=None, help="events artifact (default {workdir}/data/events)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
