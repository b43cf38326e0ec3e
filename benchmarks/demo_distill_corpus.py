"""Quality vs number of unlabelled distillation pairs: is a large teacher-labelled corpus worth it?

On a copy of a quickstart workdir (data/pairs, rag/index, teacher/embeddings, student/tokenizer;
the original is not modified) this builds a distillation corpus (``student pairs``: near and random
catalogue items for every labelled query and for ``--new-queries`` queries the labelled set never
saw), retrieves RAG examples for it from the labelled training pairs (``rag external-neighbours``,
same leakage guard as the labelled pairs), embeds its RAG prompts with the teacher, then trains the
default student on the labelled pairs plus the first N training-split corpus rows for each N in
``--points`` and each seed. Reports head and probe macro-F1 and cosine to the teacher on unseen
test queries. Writes ``results/distill_corpus-<tag>.{json,md}``. The teacher embedding is resumable:
re-running continues where it stopped.

    .venv/bin/python benchmarks/demo_distill_corpus.py --workdir runs/quickstart \\
        --new-queries 2000 --near-k 24 --random-k 24 --points 0 10000 30000 100000 --seeds 3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _machine import cpu_description  # noqa: E402

RESULTS = HERE / "results"
COPY = ("data/pairs", "data/events", "rag/index", "teacher/embeddings", "student/tokenizer")


def _stat(xs: list[float]) -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.fmean(xs):.4f} ± {sd:.4f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default="runs/quickstart", help="a finished quickstart workdir (read only)")
    ap.add_argument("--scratch", default="runs/bench_distill_corpus")
    ap.add_argument("--config", default="configs/quickstart.yaml")
    ap.add_argument("--new-queries", type=int, default=2000)
    ap.add_argument("--near-k", type=int, default=24)
    ap.add_argument("--random-k", type=int, default=24)
    ap.add_argument("--points", type=int, nargs="+", default=[0, 10000, 30000, 100000])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides (e.g. student.epochs=6)")
    ap.add_argument("--variant", default=None, help="student variant (default student.variant)")
    ap.add_argument("--embed-only", action="store_true", help="build and embed the corpus, train nothing")
    ap.add_argument("--tag", default="quickstart")
    args = ap.parse_args()

    from llm2ctr.config import load_config
    from llm2ctr.rag.jobs import run_external_neighbours
    from llm2ctr.student.artifact import load_student
    from llm2ctr.student.evaluation import HeldOut, evaluate_student
    from llm2ctr.student.jobs import load_tokenizer, load_training_data, run_distill_pairs, run_train
    from llm2ctr.teacher.jobs import run_embed

    src, work = Path(args.workdir), Path(args.scratch)
    for rel in COPY:
        if (src / rel).is_dir() and not (work / rel).is_dir():
            shutil.copytree(src / rel, work / rel)
    cfg = load_config(args.config, [f"workdir={work}", f"student.pairs_near_k={args.near_k}",
                                    f"student.pairs_random_k={args.random_k}",
                                    f"student.pairs_new_queries={args.new_queries}", *args.set])
    t0 = time.perf_counter()
    corpus = run_distill_pairs(cfg)
    print("corpus", corpus, flush=True)
    run_external_neighbours(cfg, cfg.stage_dir("student", "distill_pairs"))
    t1 = time.perf_counter()
    embed = run_embed(cfg, pairs_dir=cfg.stage_dir("student", "distill_pairs"),
                      neighbours_dir=cfg.stage_dir("rag", "distill_neighbours"),
                      examples_dir=cfg.stage_dir("data", "pairs"),
                      out_dir=cfg.stage_dir("teacher", "distill_embeddings"))
    embed_s = time.perf_counter() - t1
    print("teacher", embed, flush=True)
    if args.embed_only:
        return 0

    tok = load_tokenizer(cfg.stage_dir("student", "tokenizer"))
    data, counts, _ = load_training_data(cfg, tok)
    held = HeldOut(data, cfg.student.decision_rule, cfg.student.kd_head_rows, cfg.student.class_weight == "balanced")
    split = "unseen" if held.masks["unseen"].any() else "all"
    runs = []
    variant = args.variant or cfg.student.variant
    for n in args.points:
        for seed in range(args.seeds):
            c = dataclasses.replace(cfg, student=dataclasses.replace(
                cfg.student, seed=seed, use_distill_pairs=n > 0, max_distill_pairs=n))
            out = work / "bench" / f"n{n}-s{seed}"
            t2 = time.perf_counter()
            summary = run_train(c, variant, out_dir=out)
            model, _ = load_student(out)
            ev = evaluate_student(model, held, variant, seed, data)
            runs.append({"distill_pairs": n, "seed": seed, "train_rows": summary["counts"]["train_rows"],
                         "train_seconds": round(time.perf_counter() - t2, 1),
                         "head": ev["head"][split]["macro_f1"], "probe": ev["probe"][split]["macro_f1"],
                         "cos": ev["cosine"].get(split, {}).get("cosine")})
            print(runs[-1], flush=True)
    res = {"workdir": str(src), "variant": variant, "split": split, "seeds": args.seeds, "corpus": corpus,
           "teacher_embed": {k: v for k, v in embed.items() if k != "content_hash"},
           "teacher_embed_seconds": round(embed_s, 1), "counts": counts, "runs": runs,
           "machine": cpu_description(), "date": time.strftime("%Y-%m-%d", time.gmtime()),
           "wall_seconds": round(time.perf_counter() - t0, 1)}
    lines = [f"### Student {variant} vs distillation pairs ({args.seeds} seeds, {split} test queries; corpus "
             f"{corpus['rows']} rows from {corpus.get('labelled_queries')} labelled + {corpus.get('new_queries', 0)} new "
             f"queries, teacher RAG prompts at {embed.get('pairs_per_s', 0):.0f} pairs/s; {res['machine']}, "
             f"{res['date']})", "",
             "| distillation pairs (train split) | head macro-F1 | probe macro-F1 | cos to teacher |", "|---|---|---|---|"]
    for n in args.points:
        rs = [r for r in runs if r["distill_pairs"] == n]
        lines.append(f"| {n} | {_stat([r['head'] for r in rs])} | {_stat([r['probe'] for r in rs])} | "
                     f"{_stat([r['cos'] for r in rs])} |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"distill_corpus-{args.tag}.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    (RESULTS / f"distill_corpus-{args.tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
