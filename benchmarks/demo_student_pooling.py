"""Which vector the student exposes: masked mean of the tokens or the [CLS] state, over seeds.

The stock BERT relevance head reads [CLS]. With ``student.pooling=mean`` the distillation term
shapes the mean vector while the cross-entropy shapes [CLS]; with ``cls`` both shape one vector.
This trains sft and sft+mse students for each pooling and seed on a quickstart workdir (its
data/pairs, teacher/embeddings and student/tokenizer; nothing there is modified) with the
quickstart config, and reports head and probe macro-F1 on the test split (mean ± sd over seeds)
next to the teacher probe. Writes ``results/student_pooling-<tag>.{json,md}``.

    .venv/bin/python benchmarks/demo_student_pooling.py --workdir runs/quickstart --seeds 3
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
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _machine import cpu_description  # noqa: E402

RESULTS = HERE / "results"


def _mean_sd(xs: list[float]) -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.fmean(xs):.4f} ± {sd:.4f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default="runs/quickstart")
    ap.add_argument("--config", default="configs/quickstart.yaml")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--tag", default="quickstart")
    args = ap.parse_args()

    from llm2ctr.config import load_config
    from llm2ctr.student.artifact import load_student
    from llm2ctr.student.evaluation import HeldOut, evaluate_student
    from llm2ctr.student.jobs import load_tokenizer, load_training_data, run_train

    work = Path(args.workdir)
    cfg = load_config(args.config, [f"workdir={work}"])
    tok = load_tokenizer(work / "student" / "tokenizer")
    data, _, _ = load_training_data(cfg, tok)
    held = HeldOut(data, cfg.student.decision_rule, cfg.student.kd_head_rows)
    test = held.test
    rows, t0 = [], time.perf_counter()
    scratch = work / "bench_pooling"
    for seed in range(args.seeds):
        for pooling in ("mean", "cls"):
            for variant in ("sft", "sft+mse"):
                c = dataclasses.replace(cfg, student=dataclasses.replace(cfg.student, seed=seed, pooling=pooling))
                out = scratch / f"{pooling}-{variant.replace('+', '_')}-s{seed}"
                run_train(c, variant, out_dir=out)
                model, _ = load_student(out)
                ev = evaluate_student(model, held, variant, seed, data)
                rows.append({"pooling": pooling, "variant": variant, "seed": seed,
                             "head_macro_f1": ev["head"]["all"]["macro_f1"],
                             "probe_macro_f1": ev["probe"]["all"]["macro_f1"],
                             "cos_unseen": ev["cosine"].get("unseen", {}).get("cosine")})
                print(rows[-1], flush=True)
    probe = {"probe": held.probe(lambda d: d.teacher, 0)["all"]}
    summary = {}
    for pooling in ("mean", "cls"):
        for variant in ("sft", "sft+mse"):
            rs = [r for r in rows if r["pooling"] == pooling and r["variant"] == variant]
            summary[f"{variant}, pooling={pooling}"] = {k: _mean_sd([r[k] for r in rs])
                                                         for k in ("head_macro_f1", "probe_macro_f1", "cos_unseen")}
    res = {"workdir": str(work), "config": args.config, "seeds": args.seeds, "test_rows": len(test),
           "machine": cpu_description(), "date": time.strftime("%Y-%m-%d", time.gmtime()),
           "wall_seconds": round(time.perf_counter() - t0, 1), "runs": rows, "summary": summary,
           "teacher_probe_macro_f1": probe["probe"]["macro_f1"] if probe else None}
    lines = [f"### Student pooling: mean vs [CLS] ({args.seeds} seeds, {args.tag} world, test split "
             f"{len(test)} rows; {res['machine']}, {res['date']})", "",
             "| student | head macro-F1 | probe macro-F1 | cos to teacher, unseen q |", "|---|---|---|---|"]
    lines += [f"| {k} | {v['head_macro_f1']} | {v['probe_macro_f1']} | {v['cos_unseen']} |" for k, v in summary.items()]
    if res["teacher_probe_macro_f1"] is not None:
        lines.append(f"| teacher probe (logistic regression) | – | {res['teacher_probe_macro_f1']:.4f} | – |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"student_pooling-{args.tag}.json").write_text(json.dumps(res, indent=2) + "\n")
    (RESULTS / f"student_pooling-{args.tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
