"""`llm2ctr student ...` commands: tokenizer, pairs, train, eval, export, push."""

from __future__ import annotations

import argparse
import json
import os

from llm2ctr.cli.common import add_command, config_from_args

VARIANTS = ("sft", "kd", "mse", "sft+kd", "sft+mse", "kd+mse", "sft+kd+mse")  # llm2ctr.student.losses.VARIANTS


def _tokenizer(args: argparse.Namespace) -> int:
    from llm2ctr.student.jobs import run_tokenizer

    print(json.dumps(run_tokenizer(config_from_args(args))))
    return 0


def _pairs(args: argparse.Namespace) -> int:
    from llm2ctr.student.jobs import run_distill_pairs

    print(json.dumps(run_distill_pairs(config_from_args(args))))
    return 0


def _train(args: argparse.Namespace) -> int:
    from llm2ctr.student.jobs import run_train

    res = run_train(config_from_args(args), variant=args.variant, out_dir=args.out_dir, seed=args.seed)
    if int(os.environ.get("RANK", "0")) != 0:  # under accelerate/torchrun only the main process reports
        return 0
    keep = ("variant", "path", "steps", "epochs_done", "stopped_early", "best_valid_criterion", "decision_rule", "counts",
            "n_params", "samples_per_s")
    print(json.dumps({k: res.get(k) for k in keep}))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from llm2ctr.student.jobs import run_eval

    res = run_eval(config_from_args(args))
    print(res["table"], end="")
    print(f"written to {res['path']}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from llm2ctr.student.jobs import run_export

    res = run_export(config_from_args(args), source_dir=args.model_dir)
    print(json.dumps(res))
    return 0


def _push(args: argparse.Namespace) -> int:
    from llm2ctr.student.jobs import run_push

    res = run_push(config_from_args(args), args.repo_id, folder=args.folder, private=args.private,
                   dry_run=args.dry_run)
    if args.dry_run:
        print(f"would upload {len(res['files'])} files from {res['folder']} to {args.repo_id}"
              f" ({'private' if args.private else 'public'}):")
        print("\n".join(f"  {f}" for f in res["files"]))
    else:
        print(f"pushed {len(res['files'])} files to {args.repo_id}: {res.get('commit_url')}")
    return 0


def register(verbs: argparse._SubParsersAction) -> None:
    """Add this group's verbs."""
    add_command(verbs, "tokenizer", _tokenizer, "train the domain WordPiece tokenizer on data/pairs",
                "Train a WordPiece (vocabulary student.vocab_size) on the queries and item texts of "
                "{workdir}/data/pairs; writes {workdir}/student/tokenizer (loads with AutoTokenizer).")
    add_command(verbs, "pairs", _pairs, "build unlabelled distillation pairs",
                "Every query against its student.pairs_near_k most similar catalogue items (TF-IDF) and "
                "student.pairs_random_k random ones; writes {workdir}/student/distill_pairs (a pairs table, "
                "rsl null). Embed them with `llm2ctr teacher embed` (pairs_dir option) into "
                "{workdir}/teacher/distill_embeddings, then train.")
    p = add_command(verbs, "train", _train, "train the student (SFT + distillation), resumable",
                    "Train one variant on data/pairs (+ student/distill_pairs) and the teacher stores. "
                    "Re-running after an interruption resumes from the last checkpoint exactly. "
                    "Several GPUs/processes: accelerate launch --config_file configs/accelerate/<f>.yaml "
                    "-m llm2ctr.student train ...")
    p.add_argument("--variant", choices=VARIANTS, default=None,
                   help="the terms of the objective: sft (class-weighted cross-entropy), kd (soft labels of the "
                        "teacher head), mse (teacher-vector distillation, distance student.distill_loss); "
                        "default student.variant (sft+mse)")
    p.add_argument("--seed", type=int, default=None, help="training seed (default student.seed)")
    p.add_argument("--out-dir", default=None,
                   help="output folder (default: student/model for student.variant at student.seed, "
                        "student/variants/<v> for other variants, student/seeds/<v>/seed-<k> for other seeds)")
    add_command(verbs, "eval", _eval, "the distillation table: students vs lexical baselines and teacher probes",
                "Macro-F1 (mean ± sd over the student.eval_seeds seeds found) and accuracy on the labelled test "
                "split, for all test queries and separately for queries seen / unseen in training: TF-IDF + LR "
                "and BM25/overlap + LR, a probe on the teacher's RAG-prompt vectors and on its plain-pair "
                "vectors (teacher/plain_embeddings, if embedded), and every trained student (head and probe, "
                "cosine to the teacher). Writes {workdir}/student/eval (eval.json, eval.md, distillation.png) "
                "and prints the table.")
    p = add_command(verbs, "export", _export, "the loads-everywhere folder + ONNX fp32/int8 (parity, int8 F1 cost)",
                    "Writes {workdir}/student/export: the student folder (stock BERT: transformers, "
                    "sentence-transformers, vLLM, TEI load it; docs/student.md) plus onnx/model.onnx (checked "
                    "against PyTorch) and onnx/model_int8.onnx (dynamic quantisation; macro-F1 cost on the "
                    "test split in export.json). This folder is what `student push` uploads.")
    p.add_argument("--model-dir", default=None, help="student folder to export (default student/model)")
    p = add_command(verbs, "push", _push, "upload the exported student to the Hugging Face Hub",
                    "Uploads {workdir}/student/export (or --folder) as it is, model card included, with the "
                    "token in $HF_TOKEN (never printed).")
    p.add_argument("--repo-id", required=True, help="Hub repository, e.g. me/llm2ctr-student")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--dry-run", action="store_true", help="list the files that would be uploaded, upload nothing")
    p.add_argument("--folder", default=None, help="folder to push (default student/export)")
