"""Does the teacher's embedding carry relevance, and do RAG prompts make it better (the paper's claim)?

For each teacher (the packaged sentence encoder all-MiniLM-L6-v2, the packaged real LLM
SmolLM2-135M-Instruct), pooling, and prompt layout

  pair      ``query [SEP] item`` (template pair-v1), the text the student reads
  instruct  the relevance-v1 instruction, query and item, no retrieved examples
  rag       relevance-v1 with the retrieved labelled neighbours and edge cases (what the pipeline embeds)

this embeds a sample of labelled training pairs and every labelled test pair of a workdir (the
quickstart world or imported pairs: it needs ``data/pairs`` and ``rag/neighbours``), fits the
teacher-head probe (class-balanced logistic regression, student/teacher_head.py) on the training
vectors for 3 subsample seeds, and reports macro-F1 on the *unseen* test queries: mean ± sd over
probe seeds and a 95% bootstrap interval over test queries; rag − pair and rag − instruct as paired
bootstrap intervals (same resampled queries). Each embedding pass reports pairs/s and tokens/s.

The control: the same probe on the retrieved labels alone (one-hot rsl of the neighbours and edge
cases the RAG prompt shows, no teacher). A RAG prompt hands the teacher those labels, so "RAG helps"
only means the teacher reads more than the labels if it beats this row; ``rag + labels`` (teacher
vector next to the label one-hots) asks whether the teacher adds anything to them.
``--lora-steps N`` adds SmolLM2 after ``teacher adapt`` (LoRA on the workdir's training pairs with
RAG prompts; test queries are unseen by it too). Writes ``results/teacher_quality-<tag>.{json,md}``.

    .venv/bin/python benchmarks/bench_teacher_quality.py --workdir runs/quickstart --train-rows 1500
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

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _machine import cpu_description  # noqa: E402

RESULTS = HERE / "results"
LAYOUTS = ("pair", "instruct", "rag")
# (teacher, backend, pooling): MiniLM as the quickstart runs it; SmolLM2 on the vLLM engine
RUNS = {"minilm": [("minilm", "hf", "mean")],
        "smollm2-135m": [("smollm2-135m", "vllm", "last"), ("smollm2-135m", "vllm", "mean")]}


def layout_config(base, layout: str):
    """The teacher config of a prompt layout (same instruction and example counts as the workdir's)."""
    if layout == "pair":
        return dataclasses.replace(base, use_rag=False, template="pair-v1")
    return dataclasses.replace(base, use_rag=layout == "rag", template="relevance-v1")


def neighbour_label_features(pairs, neighbours, k: int, e: int) -> np.ndarray:
    """The control: one-hot labels of the k retrieved neighbours and e edge cases, in prompt order.

    This is all the label information a RAG prompt hands the teacher; a probe on it alone shows how
    much of the RAG gain is the retrieval's labels rather than the teacher reading the prompt.
    """
    row_of = {pid: i for i, pid in enumerate(neighbours.column("pair_id").to_pylist())}
    nb_rsl, edge_rsl = neighbours.column("nb_rsl").to_pylist(), neighbours.column("edge_rsl").to_pylist()
    out = np.zeros((pairs.num_rows, 4 * (k + e)), dtype=np.float32)
    for r, pid in enumerate(pairs.column("pair_id").to_pylist()):
        i = row_of[pid]
        labels = list(nb_rsl[i] or [])[:k] + [None] * max(0, k - len(nb_rsl[i] or []))
        labels += list(edge_rsl[i] or [])[:e]
        for slot, rsl in enumerate(labels):
            if rsl is not None:
                out[r, 4 * slot + int(rsl) - 1] = 1.0
    return out


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, pred, labels=[0, 1, 2, 3], average="macro", zero_division=0))


def query_bootstrap(queries: np.ndarray, n: int, seed: int = 0) -> list[np.ndarray]:
    """Row indices of n resamples of the test queries (with replacement), each query's rows together."""
    rng = np.random.default_rng(seed)
    uniq, inv = np.unique(queries, return_inverse=True)
    rows_of = [np.flatnonzero(inv == k) for k in range(len(uniq))]
    return [np.concatenate([rows_of[k] for k in rng.integers(0, len(uniq), len(uniq))]) for _ in range(n)]


def interval(xs: list[float]) -> list[float]:
    return [round(float(np.percentile(xs, 2.5)), 4), round(float(np.percentile(xs, 97.5)), 4)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default="runs/quickstart", help="has data/pairs and rag/neighbours (read only)")
    ap.add_argument("--config", default="configs/quickstart.yaml", help="its prompt settings are used")
    ap.add_argument("--teachers", nargs="*", default=["minilm", "smollm2-135m"], choices=sorted(RUNS))
    ap.add_argument("--poolings", nargs="+", default=["last", "mean"], choices=["last", "mean"],
                    help="SmolLM2 poolings (MiniLM is always mean-pooled, as its model card says)")
    ap.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=LAYOUTS)
    ap.add_argument("--train-rows", type=int, default=1500, help="labelled training pairs embedded for the probe")
    ap.add_argument("--test-rows", type=int, default=0, help="0 = every labelled test pair")
    ap.add_argument("--probe-seeds", type=int, default=3)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--max-model-len", type=int, default=512)
    ap.add_argument("--lora-steps", type=int, default=0, help="0 = no LoRA row")
    ap.add_argument("--lora-layouts", nargs="+", default=["rag"], choices=LAYOUTS)
    ap.add_argument("--lora-batch", type=int, default=4)
    ap.add_argument("--lora-max-len", type=int, default=256)
    ap.add_argument("--scratch", default="runs/bench_teacher_quality", help="LoRA adapter work folder")
    ap.add_argument("--tag", default="quickstart")
    args = ap.parse_args()

    from llm2ctr.config import load_config
    from llm2ctr.student.teacher_head import fit_teacher_head
    from llm2ctr.teacher.backends import make_backend
    from llm2ctr.teacher.jobs import load_inputs
    from llm2ctr.teacher.prompts import PromptSpec, build_prompts

    cfg = load_config(args.config, [f"workdir={args.workdir}"])
    pairs, neighbours, _ = load_inputs(cfg, None, None)
    rsl = pairs.column("rsl").to_numpy(zero_copy_only=False).astype(float)
    split = np.asarray(pairs.column("split").to_pylist(), dtype=object)
    queries = np.asarray(pairs.column("query").to_pylist(), dtype=object)
    rng = np.random.default_rng(0)
    train_all = np.flatnonzero((split == "train") & ~np.isnan(rsl))
    train = np.sort(rng.choice(train_all, min(args.train_rows, len(train_all)), replace=False))
    test = np.flatnonzero((split == "test") & ~np.isnan(rsl))
    test = test[~np.isin(queries[test], queries[train_all])]  # unseen queries only
    if args.test_rows:
        test = np.sort(rng.choice(test, min(args.test_rows, len(test)), replace=False))
    rows = np.concatenate([train, test])
    sub = pairs.take(rows)
    y = (rsl[rows] - 1).astype(int)
    y_train, y_test = y[:len(train)], y[len(train):]
    resamples = query_bootstrap(queries[test], args.bootstrap)
    print(f"{len(train)} training pairs, {len(test)} test pairs of {len(np.unique(queries[test]))} unseen queries",
          flush=True)

    def score(vectors: np.ndarray) -> dict:
        f1s, preds = [], []
        for s in range(args.probe_seeds):
            head = fit_teacher_head(vectors[:len(train)], y_train, max_rows=int(0.8 * len(train)), seed=s)
            preds.append(head.predict(vectors[len(train):]))
            f1s.append(macro_f1(y_test, preds[-1]))
        boot = [macro_f1(y_test[r], preds[0][r]) for r in resamples]
        return {"macro_f1_mean": round(statistics.fmean(f1s), 4),
                "macro_f1_sd": round(statistics.stdev(f1s), 4) if len(f1s) > 1 else 0.0,
                "macro_f1_ci95": interval(boot), "pred": preds[0]}

    results: list[dict] = []
    lora_summary: dict | None = None

    def embed_layouts(teacher_cfg, label: str, adapter: Path | None = None, layouts=None) -> list[dict]:
        backend = make_backend(teacher_cfg, adapter)
        out = []
        try:
            for layout in layouts or args.layouts:
                lcfg = layout_config(teacher_cfg, layout)
                prompts = build_prompts(sub, PromptSpec.from_config(lcfg), neighbours, examples=pairs)
                tok0, t0 = backend.tokens_seen, time.perf_counter()
                vectors = backend.embed(prompts)
                secs = time.perf_counter() - t0
                tokens = backend.tokens_seen - tok0
                res = score(vectors)
                row = {"teacher": label, "backend": teacher_cfg.backend, "pooling": teacher_cfg.pooling,
                       "layout": layout, "n_prompts": len(prompts), "mean_tokens": round(tokens / len(prompts), 1),
                       "pairs_per_s": round(len(prompts) / secs, 2), "tokens_per_s": round(tokens / secs, 1),
                       "embed_s": round(secs, 1), **res}
                rows = [row]
                if layout == "rag":  # does reading the prompt add anything to the retrieved labels?
                    rows.append({**row, "layout": "rag + labels", **score(np.hstack([vectors, control]))})
                for r in rows:
                    print({k: v for k, v in r.items() if k != "pred"}, flush=True)
                out += rows
                results.extend(rows)
                write(final=False)
        finally:
            backend.close()
        return out

    def write(final: bool) -> list[str]:
        """Rewrite the results files after every row, so an interrupted run keeps what it measured."""
        # rag - pair and rag - instruct, paired over the same resampled queries
        diffs = []
        by_key = {(r["teacher"], r["pooling"], r["layout"]): r for r in results}
        for (teacher, pooling, layout), r in by_key.items():
            if layout != "rag":
                continue
            for other in ("pair", "instruct"):
                o = by_key.get((teacher, pooling, other))
                if o is None:
                    continue
                d = [macro_f1(y_test[s], r["pred"][s]) - macro_f1(y_test[s], o["pred"][s]) for s in resamples]
                diffs.append({"teacher": teacher, "pooling": pooling, "contrast": f"rag - {other}",
                              "delta_mean_over_seeds": round(r["macro_f1_mean"] - o["macro_f1_mean"], 4),
                              "delta_ci95": interval(d)})
        control_row = by_key.get(("retrieved labels only (control)", "-", "rag"))
        for r in results:  # a teacher reading the RAG prompt vs the retrieved labels alone
            if r["layout"].startswith("rag") and r["backend"] != "none" and control_row is not None:
                d = [macro_f1(y_test[s], r["pred"][s]) - macro_f1(y_test[s], control_row["pred"][s])
                     for s in resamples]
                diffs.append({"teacher": r["teacher"], "pooling": r["pooling"],
                              "contrast": f"{r['layout']} - retrieved labels only",
                              "delta_mean_over_seeds": round(r["macro_f1_mean"] - control_row["macro_f1_mean"], 4),
                              "delta_ci95": interval(d)})
        for r in results:  # LoRA - base, same prompt layout and pooling
            o = by_key.get(("smollm2-135m", r["pooling"], r["layout"]))
            if r["teacher"].endswith("+ LoRA") and o is not None:
                d = [macro_f1(y_test[s], r["pred"][s]) - macro_f1(y_test[s], o["pred"][s]) for s in resamples]
                diffs.append({"teacher": "smollm2-135m", "pooling": r["pooling"],
                              "contrast": f"LoRA - base ({r['layout']})",
                              "delta_mean_over_seeds": round(r["macro_f1_mean"] - o["macro_f1_mean"], 4),
                              "delta_ci95": interval(d)})
        out = {"machine": cpu_description(), "date": time.strftime("%Y-%m-%d"), "workdir": args.workdir,
               "train_rows": len(train), "test_rows": len(test), "test_queries": int(len(np.unique(queries[test]))),
               "probe_seeds": args.probe_seeds, "max_model_len": args.max_model_len,
               "prompt": {"max_examples": base.max_examples, "max_edge_cases": base.max_edge_cases},
               "complete": final,
               "rows": [{k: v for k, v in r.items() if k != "pred"} for r in results], "contrasts": diffs,
               "lora": None if lora_summary is None else {k: v for k, v in lora_summary.items() if k != "out"}}
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"teacher_quality-{args.tag}.json").write_text(json.dumps(out, indent=2) + "\n")
        md = [f"# Teacher quality: probe macro-F1 on unseen test queries ({args.tag})", "",
              f"{out['machine']}, {out['date']}. Probe: class-balanced logistic regression on {len(train)} labelled "
              f"training pairs' teacher vectors (80% subsamples, {args.probe_seeds} seeds); test: {len(test)} pairs of "
              f"{out['test_queries']} queries never in training. 95% interval: bootstrap over test queries "
              f"(seed-0 probe). Prompts: {base.max_examples} examples + {base.max_edge_cases} edge cases, "
              f"max {args.max_model_len} tokens, truncated on the left.", "",
              "| teacher | pooling | prompt | macro-F1 (mean ± sd) | 95% CI | tokens/prompt | pairs/s | tokens/s | backend |",
              "|---|---|---|---:|---|---:|---:|---:|---|"]
        for r in results:
            md.append(f"| {r['teacher']} | {r['pooling']} | {r['layout']} | {r['macro_f1_mean']:.4f} ± "
                      f"{r['macro_f1_sd']:.4f} | {r['macro_f1_ci95'][0]:.3f}–{r['macro_f1_ci95'][1]:.3f} | "
                      f"{r['mean_tokens']:.0f} | {r['pairs_per_s']:.1f} | {r['tokens_per_s']:.0f} | {r['backend']} |")
        md += ["", "Paired contrasts (same resampled queries; an interval that excludes 0 is a real difference):", "",
               "| teacher | pooling | contrast | Δ macro-F1 (probe-seed means) | 95% CI |", "|---|---|---|---:|---|"]
        for d in diffs:
            md.append(f"| {d['teacher']} | {d['pooling']} | {d['contrast']} | {d['delta_mean_over_seeds']:+.4f} | "
                      f"{d['delta_ci95'][0]:+.3f} … {d['delta_ci95'][1]:+.3f} |")
        if lora_summary:
            md += ["", f"LoRA: {lora_summary['steps']} steps (r=8, batch {args.lora_batch}, prompts cut to "
                   f"{args.lora_max_len} tokens) on the training pairs' RAG prompts, {lora_summary['train_s']} s; "
                   f"validation accuracy of its head {lora_summary.get('valid_acc_before')} → "
                   f"{lora_summary.get('valid_acc_after')}."]
        (RESULTS / f"teacher_quality-{args.tag}.md").write_text("\n".join(md) + "\n")
        return md

    base = dataclasses.replace(cfg.teacher, max_model_len=args.max_model_len, normalize=True, use_adapter=False)
    control = neighbour_label_features(sub, neighbours, base.max_examples, base.max_edge_cases)
    results.append({"teacher": "retrieved labels only (control)", "backend": "none", "pooling": "-", "layout": "rag",
                    "n_prompts": len(control), "mean_tokens": 0.0, "pairs_per_s": 0.0, "tokens_per_s": 0.0,
                    "embed_s": 0.0, **score(control)})
    write(final=False)
    for name in args.teachers:
        for model, backend, pooling in RUNS[name]:
            if name != "minilm" and pooling not in args.poolings:
                continue
            tcfg = dataclasses.replace(base, model=model, backend=backend, pooling=pooling,
                                       dtype="float32", batch_size=32)
            embed_layouts(tcfg, model)
    if args.lora_steps:
        from llm2ctr.teacher.jobs import run_adapt

        scratch = Path(args.scratch)
        for rel in ("data/pairs", "rag/neighbours"):
            if not (scratch / rel).is_dir():
                shutil.copytree(Path(args.workdir) / rel, scratch / rel)
        acfg = dataclasses.replace(cfg, workdir=str(scratch))
        acfg.teacher = dataclasses.replace(base, model="smollm2-135m", backend="hf", pooling="last",
                                           max_model_len=args.lora_max_len, dtype="float32")
        acfg.teacher.lora = dataclasses.replace(acfg.teacher.lora, max_steps=args.lora_steps, r=8, alpha=16,
                                                lr=5e-4, batch_size=args.lora_batch, save_every=50)
        t0 = time.perf_counter()
        lora_summary = run_adapt(acfg, progress=True)
        lora_summary["train_s"] = round(time.perf_counter() - t0, 1)
        print("lora", lora_summary, flush=True)
        tcfg = dataclasses.replace(base, model="smollm2-135m", backend="vllm", pooling="last", dtype="float32")
        embed_layouts(tcfg, "smollm2-135m + LoRA", Path(lora_summary["out"]), args.lora_layouts)

    print("\n".join(write(final=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
