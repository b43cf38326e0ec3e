"""Which objective makes the student worth distilling: each arm over seeds, next to its baselines.

Arms are student variants with their loss settings (losses.py). Every arm is trained for each
seed on a quickstart workdir (its data/pairs, teacher/embeddings, student/tokenizer and, if
present, student/distill_pairs + teacher/distill_embeddings; nothing there is modified) and scored
like the pipeline's distillation table (student/evaluation.py): head and probe macro-F1 on unseen
test queries (mean ± sd over seeds), next to TF-IDF + LR, BM25/overlap + LR and the teacher
probes fitted once. Writes ``results/student_objectives-<tag>.{json,md}``.

    .venv/bin/python benchmarks/demo_student_objectives.py --workdir runs/quickstart --seeds 3
    .venv/bin/python benchmarks/demo_student_objectives.py --arms sft "sft+kd" --set student.epochs=8
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _machine import cpu_description  # noqa: E402

RESULTS = HERE / "results"
# arm name -> (variant, student overrides)
ARMS: dict[str, tuple[str, dict]] = {
    "sft": ("sft", {}),
    "sft+mse, MSE x100 (paper)": ("sft+mse", {"distill_loss": "mse", "mse_weight": 100.0}),
    "sft+mse, scaled MSE x1": ("sft+mse", {"distill_loss": "scaled_mse", "mse_weight": 1.0}),
    "sft+mse, centered cosine x1": ("sft+mse", {"distill_loss": "centered_cosine", "mse_weight": 1.0}),
    "sft+kd": ("sft+kd", {}),
    "sft+kd+mse, MSE x100": ("sft+kd+mse", {"distill_loss": "mse", "mse_weight": 100.0}),
    "sft+kd+mse, centered cosine x1": ("sft+kd+mse", {"distill_loss": "centered_cosine", "mse_weight": 1.0}),
}


def _stat(xs: list[float]) -> dict[str, float]:
    return {"mean": round(statistics.fmean(xs), 4), "sd": round(statistics.stdev(xs), 4) if len(xs) > 1 else 0.0}


def _pm(d: dict[str, float] | None) -> str:
    return "–" if d is None else f"{d['mean']:.4f} ± {d['sd']:.4f}"


def _typed(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(v, v)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default="runs/quickstart")
    ap.add_argument("--config", default="configs/quickstart.yaml")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--arms", nargs="*", default=list(ARMS), help=f"subset of: {list(ARMS)}")
    ap.add_argument("--set", nargs="*", default=[], metavar="student.KEY=VALUE",
                    help="student settings for every arm (e.g. student.epochs=8)")
    ap.add_argument("--tag", default="quickstart")
    args = ap.parse_args()

    from llm2ctr.config import load_config
    from llm2ctr.student.artifact import load_student
    from llm2ctr.student.baselines import lexical_lr, tfidf_lr
    from llm2ctr.student.evaluation import HeldOut, evaluate_student
    from llm2ctr.student.jobs import load_tokenizer, load_training_data, run_train

    work = Path(args.workdir)
    cfg = load_config(args.config, [f"workdir={work}"])
    common = {k.split(".", 1)[1]: _typed(v) for k, v in (s.split("=", 1) for s in args.set)}
    cfg = dataclasses.replace(cfg, student=dataclasses.replace(cfg.student, **common))
    tok = load_tokenizer(work / "student" / "tokenizer")
    data, counts, _ = load_training_data(cfg, tok)
    held = HeldOut(data, cfg.student.decision_rule, cfg.student.kd_head_rows, cfg.student.class_weight == "balanced")
    split = "unseen" if held.masks["unseen"].any() else "all"
    t0 = time.perf_counter()
    reference: dict[str, float] = {}

    def texts(d):
        return d.queries.tolist(), d.items.tolist()

    for name, fit in (("TF-IDF + LR", tfidf_lr), ("BM25/overlap + LR", lexical_lr)):
        v, t = fit(texts(held.train), held.train.labels, texts(held.valid), held.valid.labels, texts(held.test))
        reference[name] = held.score(v, t)[split]["macro_f1"]
    reference["teacher probe (RAG prompt)"] = held.probe(lambda d: d.teacher, 0)[split]["macro_f1"]
    plain = work / "teacher" / "plain_embeddings"
    if (plain / "manifest.json").is_file():
        from llm2ctr.student.data import join_teacher, load_teacher_stores

        keys, vecs = load_teacher_stores([plain])
        reference["teacher probe (plain pair)"] = held.probe(
            lambda d: join_teacher(d.pair_ids.tolist(), keys, vecs)[0], 0)[split]["macro_f1"]
    print(reference, flush=True)

    scratch = work / "bench_objectives"
    runs = []
    for arm in args.arms:
        variant, overrides = ARMS[arm]
        for seed in range(args.seeds):
            c = dataclasses.replace(cfg, student=dataclasses.replace(cfg.student, seed=seed, **overrides))
            out = scratch / f"{arm.replace(' ', '_').replace(',', '').replace('+', '_')}-s{seed}"
            t1 = time.perf_counter()
            summary = run_train(c, variant, out_dir=out)
            model, _ = load_student(out)
            ev = evaluate_student(model, held, variant, seed, data)
            runs.append({"arm": arm, "seed": seed, "train_seconds": round(time.perf_counter() - t1, 1),
                         "epochs": summary["epochs_done"],
                         "head": ev["head"][split]["macro_f1"] if "head" in ev else None,
                         "probe": ev["probe"][split]["macro_f1"],
                         "cos": ev["cosine"].get(split, {}).get("cosine")})
            print(runs[-1], flush=True)
    summary = {}
    for arm in args.arms:
        rs = [r for r in runs if r["arm"] == arm]
        summary[arm] = {k: (_stat([r[k] for r in rs]) if rs[0][k] is not None else None) for k in ("head", "probe", "cos")}
    res = {"workdir": str(work), "config": args.config, "settings": common, "seeds": args.seeds, "split": split,
           "test_rows": len(held.test), "train_rows": counts, "machine": cpu_description(),
           "date": time.strftime("%Y-%m-%d", time.gmtime()), "wall_seconds": round(time.perf_counter() - t0, 1),
           "reference": reference, "runs": runs, "summary": summary}
    lines = [f"### Student objectives ({args.seeds} seeds, {args.tag} world, {split} test queries, "
             f"{len(held.test)} rows; settings {common or 'config defaults'}; {res['machine']}, {res['date']})", "",
             "| model | head macro-F1 | probe macro-F1 | cos to teacher |", "|---|---|---|---|"]
    lines += [f"| {k} | – | {v:.4f} | – |" for k, v in reference.items()]
    lines += [f"| student {k} | {_pm(v['head'])} | {_pm(v['probe'])} | {_pm(v['cos'])} |" for k, v in summary.items()]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"student_objectives-{args.tag}.json").write_text(json.dumps(res, indent=2) + "\n")
    (RESULTS / f"student_objectives-{args.tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
