"""Ranker training throughput: samples/s with cached text embeddings vs the encoder in the loop.

Builds the quickstart world with the data stage (synthetic pairs, simulated clicks, history) unless
``--workdir`` already holds one, and a student of the paper's size (vocabulary 12k, 3 layers,
d=128; random weights unless ``{workdir}/student/model`` exists: throughput does not depend on
the weights). Then trains each model for a fixed number of steps and times it, and with
``--suite`` runs the whole default suite as ``llm2ctr ctr train`` does and reports per-model wall
time and AUC. Writes results/ctr.json and results/ctr.md. Compare ratios within one run.

    .venv/bin/python benchmarks/bench_ctr.py --quick          # 5k requests, 20 steps per model
    .venv/bin/python benchmarks/bench_ctr.py --suite          # + the whole suite at quickstart size
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
THROUGHPUT_MODELS = ["lr", "din", "v2_frozen", "prectr_v2"]


def machine(threads: int) -> dict[str, object]:
    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"platform": platform.platform(), "cpu_cores": os.cpu_count(), "torch_threads": threads,
            "torch": torch.__version__, "python": platform.python_version(),
            "load_average_at_start": [round(x, 2) for x in load],
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def ensure_world(cfg) -> dict[str, object]:
    """Data artifacts (data stage jobs) and a student folder; returns what was built."""
    from llm2ctr.artifacts import atomic_dir, write_manifest

    built: dict[str, object] = {}
    if not (cfg.stage_dir("data", "history") / "manifest.json").is_file():
        from llm2ctr.data.jobs import run_history, run_simulate, run_synth

        t = time.perf_counter()
        run_synth(cfg)
        built["simulate"] = run_simulate(cfg)
        run_history(cfg)
        built["data_seconds"] = round(time.perf_counter() - t, 1)
    folder = cfg.stage_dir("student", "model")
    if not (folder / "manifest.json").is_file():
        import torch

        from llm2ctr.data.store import load_pairs
        from llm2ctr.student.artifact import write_student
        from llm2ctr.student.modeling import Student, student_config
        from llm2ctr.student.tokenization import build_tokenizer

        pairs = load_pairs(cfg.stage_dir("data", "pairs"))
        texts = pairs.column("query").to_pylist() + pairs.column("item_text").to_pylist()
        tok = build_tokenizer(texts, cfg.student.vocab_size)
        torch.manual_seed(0)
        s = cfg.student
        model = Student.from_config(student_config(len(tok), d_model=s.d_model, num_layers=s.num_layers,
                                                   num_heads=s.num_heads, ffn_dim=s.ffn_dim, max_length=s.max_length),
                                    teacher_dim=384, pooling=s.pooling)
        with atomic_dir(folder) as tmp:
            write_student(model, tok, tmp, s.max_length)
            write_manifest(tmp, kind="student", stage="bench_ctr", note="random weights: throughput only")
        built["student"] = f"random-init, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters"
    return built


def throughput(cfg, steps: int) -> list[dict[str, object]]:
    import torch

    from llm2ctr.ctr import jobs
    from llm2ctr.ctr.baselines import build_model, get_spec
    from llm2ctr.ctr.prepare import prepare, student_dir
    from llm2ctr.ctr.trainer import predict, train
    from llm2ctr.student.artifact import load_encoder

    prepared = prepare(cfg)
    contexts = jobs.TextContexts(cfg, prepared)
    rows = []
    for name in THROUGHPUT_MODELS:
        spec = get_spec(name)
        source = {"none": "none", "frozen": "distilled", "finetune": "distilled", "random": "random"}[spec.encoder]
        t = time.perf_counter()
        ctx = contexts.get(source)
        cache_s = time.perf_counter() - t
        torch.manual_seed(0)
        enc = load_encoder(student_dir(cfg))[0] if spec.encoder == "finetune" else None
        model = build_model(spec, ctx, prepared.spec, cfg.ctr, enc)
        with tempfile.TemporaryDirectory() as tmp:
            cfg.ctr.max_steps = steps
            cfg.ctr.encoder_unfreeze_at = 0.0  # "encoder in the loop" means every step
            s = train(model, spec, prepared.reader("train"), cfg.ctr, tmp, progress=False)
        reader = prepared.reader("test")
        t = time.perf_counter()
        predict(model, reader, 4096, f"predict {name}")
        inf = reader.num_rows / (time.perf_counter() - t)
        rows.append({"model": name, "text": {"none": "-", "frozen": "cached embeddings",
                                             "finetune": "encoder in the loop"}[spec.encoder],
                     "batch": cfg.ctr.batch_size, "steps": s["steps"], "train_samples_per_s": s["samples_per_s"],
                     "predict_samples_per_s": round(inf, 1), "text_cache_build_s": round(cache_s, 2)})
        print(rows[-1], flush=True)
    return rows


def suite(cfg) -> dict[str, object]:
    from llm2ctr.ctr import jobs

    cfg.ctr.max_steps = 0
    out = jobs.run_train(cfg, None, progress=False)
    ev = jobs.run_eval(cfg)["results"]
    rows = []
    for name, s in out["models"].items():
        m = ev.get(name, {})
        rows.append({"model": name, "train_s": s["train_seconds"], "predict_s": s["predict_seconds"], "steps": s["steps"],
                     "samples_per_s": s["samples_per_s"],
                     "auc_exposed": m.get("exposed", {}).get("all", {}).get("auc"),
                     "gauc_exposed": m.get("exposed", {}).get("all", {}).get("gauc"),
                     "auc_counterfactual": m.get("counterfactual", {}).get("all", {}).get("auc")})
        print(rows[-1], flush=True)
    # train_s/predict_s come from each model's manifest, so they are right even when a model was
    # already trained in this workdir (then skipped here)
    return {"train_s_sum": round(sum(r["train_s"] for r in rows), 1),
            "predict_s_sum": round(sum(r["predict_s"] for r in rows), 1), "counts": out["counts"], "models": rows}


def to_markdown(res: dict) -> str:
    m = res["machine"]
    lines = [f"# Ranker throughput ({m['cpu_cores']} CPU cores, torch threads {m['torch_threads']}, "
             f"load {m['load_average_at_start']}, {m['date']})", "",
             f"Impressions: {res['counts']}. Student: {res.get('built', {}).get('student', 'from the workdir')}.", "",
             "| model | text | batch | steps | train samples/s | predict samples/s |", "|---|---|---:|---:|---:|---:|"]
    for r in res["throughput"]:
        lines.append(f"| {r['model']} | {r['text']} | {r['batch']} | {r['steps']} | {r['train_samples_per_s']} | "
                     f"{r['predict_samples_per_s']} |")
    if "suite" in res:
        s = res["suite"]
        lines += ["", f"## Whole suite: training {s['train_s_sum']:.0f} s + prediction {s['predict_s_sum']:.0f} s", "",
                  "| model | train s | predict s | steps | samples/s | AUC exposed | GAUC exposed | AUC counterfactual |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in s["models"]:
            f = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
            lines.append(f"| {r['model']} | {r['train_s']:.1f} | {r['predict_s']:.1f} | {r['steps']} | {r['samples_per_s']} | "
                         f"{f(r['auc_exposed'])} | {f(r['gauc_exposed'])} | {f(r['auc_counterfactual'])} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "llm2ctr_bench_ctr"))
    ap.add_argument("--quick", action="store_true", help="5k requests, 20 steps per model")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--suite", action="store_true", help="also train the whole default suite")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("overrides", nargs="*", help="config overrides for the suite, e.g. ctr.epochs=1")
    args = ap.parse_args()
    import torch

    from llm2ctr.config import load_config

    torch.set_num_threads(args.threads)
    base = [f"workdir={args.workdir}", "ctr.batch_size=1024", f"ctr.num_threads={args.threads}"]
    if args.quick:
        base += ["data.simulate.n_requests=5000", "data.simulate.n_users=800"]
    cfg = load_config(None, base + args.overrides)
    res: dict = {"machine": machine(args.threads), "config": {"overrides": base + args.overrides}}
    res["built"] = ensure_world(cfg)
    res["throughput"] = throughput(cfg, 20 if args.quick else args.steps)
    from llm2ctr.ctr.prepare import prepare

    res["counts"] = prepare(cfg).counts
    if args.suite:
        res["suite"] = suite(load_config(None, base + args.overrides))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ctr.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    (RESULTS / "ctr.md").write_text(to_markdown(res))
    print(to_markdown(res))


if __name__ == "__main__":
    main()
