"""`llm2ctr ctr ...` commands: train, eval, report, push (thin; logic in llm2ctr.ctr.jobs)."""

from __future__ import annotations

import argparse
import json

from llm2ctr.cli.common import add_command, config_from_args


def _jobs():
    from llm2ctr.ctr import jobs

    return jobs


def _print(obj: dict) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _train(args: argparse.Namespace) -> int:
    _print(_jobs().run_train(config_from_args(args), args.model or None))
    return 0


def _eval(args: argparse.Namespace) -> int:
    _print(_jobs().run_eval(config_from_args(args)))
    return 0


def _report(args: argparse.Namespace) -> int:
    _print(_jobs().run_report(config_from_args(args)))
    return 0


def _study(args: argparse.Namespace) -> int:
    from llm2ctr.ctr.study import run_study

    _print(run_study(config_from_args(args), args.model or None, args.seeds))
    return 0


def _push(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    _print(_jobs().push(cfg, args.model, args.repo or cfg.ctr.hub_repo, dry_run=args.dry_run, private=args.private))
    return 0


def register(verbs: argparse._SubParsersAction) -> None:
    """Add this group's verbs."""
    from llm2ctr.ctr.registry import REGISTRY

    names = ", ".join(REGISTRY)
    p = add_command(
        verbs, "train", _train, "train the PRECTR-V2 ranker, its baselines and ablations",
        description="Build the ranker's features from {workdir}/data and the student, then train each model "
        f"into {{workdir}}/ctr/models/<name> (resumable; up-to-date models are skipped).\nModels: {names}.\n"
        "Default: the whole suite (or ctr.models); ctr.time_budget_s caps the suite's wall time.",
    )
    p.add_argument("--model", action="append", metavar="NAME", help="train only this model (repeatable)")
    add_command(verbs, "eval", _eval, "AUC, GAUC, PCOC, logloss per model x eval set x segment",
                description="Evaluate every trained model on the exposed test set and the counterfactual "
                "all-candidates set, per segment (all, cold_start: < ctr.cold_start_max_hist past behaviours, "
                "active); writes {workdir}/ctr/eval/results.json.")
    add_command(verbs, "report", _report, "write the report: tables, JSON, plots and ground-truth checks",
                description="Evaluate, check the paper's claims against the simulator's ground truth and write "
                "{workdir}/ctr/report (markdown, JSON, PNG).")
    p = add_command(
        verbs, "study", _study, "train models over seeds; every claim with a 95%% interval and a verdict",
        description="Train ctr.study_models over ctr.study_seeds seeds (the first seed's models are ctr/models), "
        "score them on the exposed and all-candidates test sets against labels and, on simulated logs, the true "
        "click probability, and settle each PRECTR-V2 claim with a paired bootstrap interval over requests, its "
        "best achievable gain and a positive control. Writes {workdir}/ctr/study/study.{json,md,png}.",
    )
    p.add_argument("--model", action="append", metavar="NAME", help="study only these models (repeatable)")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default ctr.study_seeds)")
    p = add_command(verbs, "push", _push, "upload a trained ranker folder to the Hugging Face Hub",
                    description="Upload {workdir}/ctr/models/<model> to a Hub repo (token from HF_TOKEN). "
                    "--dry-run lists what would be uploaded.")
    p.add_argument("--model", default="prectr_v2", help="model folder to upload (default prectr_v2)")
    p.add_argument("--repo", default="", help="Hub repo id, e.g. me/prectr-v2 (default: ctr.hub_repo)")
    p.add_argument("--dry-run", action="store_true", help="list the files, upload nothing")
    p.add_argument("--private", action="store_true", help="create the repo private")
