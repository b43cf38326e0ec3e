"""The local embed job vs the Ray Data pipeline (``teacher.engine=ray``) on the same prompts, and what
the ranker's feature building costs next to the teacher (is it worth moving onto Ray too?).

1. A world of ``--pairs`` labelled pairs (the quickstart generator, more queries) with its RAG
   neighbours (packaged MiniLM + faiss), and a tiny Qwen2 teacher built offline (2 layers: the
   model is cheap, so the table shows the engines' own overhead).
2. The same RAG prompts embedded four ways: local job with 1 and with all torch threads; Ray with
   1 actor and with one actor per core (1 CPU each). Ray's start-up (``ray.init``) is timed apart.
   The 1-thread local store and every Ray store must be equal (manifest content hash).
3. ``--features-workdir`` (a finished quickstart workdir): history (user and cross-user sequences)
   and ranker feature rows rebuilt from its events, timed per row.

    .venv/bin/python benchmarks/bench_ray_teacher.py --pairs 20000 --features-workdir runs/quickstart
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _machine import cpu_description  # noqa: E402

RESULTS = HERE / "results"


def build_world(root: Path, n_pairs: int) -> Path:
    """Pairs + neighbours of about ``n_pairs`` labelled pairs (reused when already built)."""
    from llm2ctr.config import load_config
    from llm2ctr.pipeline import run_pipeline

    cfg = load_config("configs/quickstart.yaml", [f"workdir={root}", f"data.synth.n_queries={max(1, n_pairs // 20)}",
                                                  "data.synth.pairs_per_query=20"])
    t0 = time.perf_counter()
    run_pipeline(cfg, only=["pairs", "rag_index", "rag_neighbours"])
    print(f"world: {time.perf_counter() - t0:.0f} s", flush=True)
    return root


def embed(cfg, out: Path, threads: int) -> dict:
    import torch

    from llm2ctr.teacher.jobs import run_embed

    shutil.rmtree(out, ignore_errors=True)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        t0 = time.perf_counter()
        summary = run_embed(cfg, out_dir=out, progress=False)
        secs = time.perf_counter() - t0
    finally:
        torch.set_num_threads(before)
    from llm2ctr.artifacts import read_manifest

    m = read_manifest(out)
    return {"seconds": round(secs, 1), "pairs": summary["rows"], "unique_prompts": summary["unique_prompts"],
            "pairs_per_s": round(summary["rows"] / secs, 1), "tokens": m["counts"]["tokens"],
            "tokens_per_s": round(m["counts"]["tokens"] / secs, 1), "content_hash": m["content_hash"]}


def time_features(workdir: Path, scratch: Path) -> dict:
    """History + ranker feature rows, rebuilt from a finished workdir's events in a scratch copy."""
    from llm2ctr.config import load_config
    from llm2ctr.ctr.prepare import prepare
    from llm2ctr.data.jobs import run_history

    shutil.rmtree(scratch, ignore_errors=True)
    for rel in ("data/pairs", "data/events", "data/counterfactual", "data/ground_truth"):
        if (workdir / rel).is_dir():
            shutil.copytree(workdir / rel, scratch / rel)
    cfg = load_config("configs/quickstart.yaml", [f"workdir={scratch}"])
    t0 = time.perf_counter()
    hist = run_history(cfg)
    t_hist = time.perf_counter() - t0
    t0 = time.perf_counter()
    prepared = prepare(cfg, force=True)
    t_feat = time.perf_counter() - t0
    rows = sum(v for k, v in prepared.counts.items() if k != "exploration_rows_excluded")
    return {"history_s": round(t_hist, 2), "history": {k: v for k, v in hist.items() if isinstance(v, int | float)},
            "feature_rows": rows, "features_s": round(t_feat, 2),
            "feature_rows_per_s": round(rows / t_feat, 1), "us_per_feature_row": round(1e6 * t_feat / rows, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=20000)
    ap.add_argument("--scratch", default="runs/bench_ray_teacher")
    ap.add_argument("--features-workdir", default="", help="a finished quickstart workdir (empty: skip part 3)")
    ap.add_argument("--tag", default="20k")
    args = ap.parse_args()

    import ray

    from llm2ctr.config import load_config
    from llm2ctr.teacher.tiny_models import build_tiny_qwen2

    scratch = Path(args.scratch)
    world = build_world(scratch / "world", args.pairs)
    model = scratch / "tiny-qwen2"
    if not (model / "config.json").is_file():
        build_tiny_qwen2(model)
    cores = os.cpu_count() or 1
    base = load_config("configs/quickstart.yaml", [f"workdir={world}"])
    base.teacher = dataclasses.replace(base.teacher, model=str(model), pooling="last", batch_size=32,
                                       shard_size=1024, max_model_len=512, store_dtype="float32")
    runs: dict[str, dict] = {}
    for threads in sorted({1, cores}):
        runs[f"local, {threads} thread(s)"] = embed(base, scratch / f"local-{threads}", threads)
        print(runs[f"local, {threads} thread(s)"], flush=True)
    t0 = time.perf_counter()
    ray.init(num_cpus=cores, include_dashboard=False, configure_logging=False, log_to_driver=False)
    ray_init_s = round(time.perf_counter() - t0, 1)
    try:
        for actors in sorted({1, cores}):
            cfg = dataclasses.replace(base, teacher=dataclasses.replace(base.teacher, engine="ray", ray_actors=actors,
                                                                        ray_cpus_per_actor=1))
            runs[f"ray, {actors} actor(s) x 1 CPU"] = embed(cfg, scratch / f"ray-{actors}", 1)
            print(runs[f"ray, {actors} actor(s) x 1 CPU"], flush=True)
    finally:
        ray.shutdown()
    reference = runs["local, 1 thread(s)"]["content_hash"]
    same = {name: r["content_hash"] == reference for name, r in runs.items()}
    features = time_features(Path(args.features_workdir), scratch / "features") if args.features_workdir else None

    out = {"machine": cpu_description(), "date": time.strftime("%Y-%m-%d"), "cores": cores,
           "teacher": "tiny Qwen2 (2 layers, hidden 128), RAG prompts", "ray_version": ray.__version__,
           "ray_init_s": ray_init_s, "runs": runs, "store_equal_to_local_1_thread": same, "features": features}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"ray_teacher-{args.tag}.json").write_text(json.dumps(out, indent=2) + "\n")
    first = next(iter(runs.values()))
    md = [f"# Teacher embed job: local vs Ray Data ({args.tag})", "",
          f"{out['machine']}, {out['date']}, {cores} cores, Ray {ray.__version__}. {first['pairs']:,} pairs, "
          f"{first['unique_prompts']:,} unique RAG prompts, {first['tokens'] / first['unique_prompts']:.0f} tokens "
          f"each; {out['teacher']}. `ray.init` (local instance): {ray_init_s} s, not included below.", "",
          "| engine | seconds | pairs/s | tokens/s | store = local 1-thread store |", "|---|---:|---:|---:|---|"]
    for name, r in runs.items():
        md.append(f"| {name} | {r['seconds']} | {r['pairs_per_s']:,.0f} | {r['tokens_per_s']:,.0f} | "
                  f"{'yes' if same[name] else 'no'} |")
    if features:
        md += ["", f"Ranker inputs rebuilt from `{args.features_workdir}`'s events: history {features['history_s']} s; "
               f"{features['feature_rows']:,} feature rows in {features['features_s']} s "
               f"({features['us_per_feature_row']} µs per row, {features['feature_rows_per_s']:,.0f} rows/s)."]
    (RESULTS / f"ray_teacher-{args.tag}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
