"""rag stage benchmark: MiniLM throughput, faiss build/query speed and recall@10, guarded retrieval.

Index part: 100k unit vectors of dim 384 (MiniLM's size), two sets: "clustered" (points around
1,000 random centres, within-cluster cosine ~0.9, shaped like text embeddings) and "uniform"
(random directions: the worst case for approximate search). recall@10 is tie-aware against exact
IndexFlatIP on the same vectors, from 1,000 held-out queries of the same distribution.
Writes benchmarks/results/rag.json and rag.md and prints them. Timings never assert anything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from llm2ctr.rag.config import RagConfig  # noqa: E402
from llm2ctr.rag.embedder import embed_texts, load_embedder, pair_texts  # noqa: E402
from llm2ctr.rag.index import IndexParams, build_index, recall_at_k, search  # noqa: E402
from llm2ctr.rag.neighbours import Guard, retrieve  # noqa: E402

WORDS = ["running", "leather", "trail", "android", "camera", "battery", "knife", "skillet", "kettle",
         "puzzle", "wooden", "robot", "jacket", "wool", "denim", "lamp", "desk", "sofa", "guitar", "drum"]
COLOURS = ["red", "blue", "black", "green", "white", "grey", "pink", "brown"]
BRANDS = ["acme", "nordix", "zento", "kiro", "valla", "opal"]


def machine() -> dict:
    import torch

    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "faiss": faiss.__version__,
        "faiss_threads": faiss.omp_get_max_threads(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    w = rng.integers(len(WORDS), size=(n, 2))
    c = rng.integers(len(COLOURS), size=(n, 2))
    b = rng.integers(len(BRANDS), size=n)
    queries = [f"{COLOURS[c[i, 0]]} {WORDS[w[i, 0]]}" for i in range(n)]
    items = [f"{BRANDS[b[i]]} {COLOURS[c[i, 1]]} {WORDS[w[i, 1]]} {WORDS[w[i, 0]]} model {i % 997}"
             for i in range(n)]
    return pair_texts(queries, items)


def bench_minilm(n: int, batch: int) -> tuple[dict, np.ndarray]:
    model = load_embedder("minilm")
    t = texts(n)
    embed_texts(model, t[:batch], batch, show_progress=False)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    v = embed_texts(model, t, batch, show_progress=False)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"texts": n, "batch_size": batch, "seconds": round(dt, 2), "cpu_seconds": round(cpu, 2),
            "pairs_per_s": round(n / dt, 1), "pairs_per_cpu_s": round(n / cpu, 1)}, v


def vector_set(kind: str, n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "clustered":
        centres = rng.standard_normal((1000, dim)).astype(np.float32)
        x = centres[rng.integers(1000, size=n)] + 0.35 * rng.standard_normal((n, dim)).astype(np.float32)
    else:
        x = rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def bench_indexes(base: np.ndarray, queries: np.ndarray, cfg: RagConfig, k: int = 10) -> list[dict]:
    rows = []
    exact_sims = None
    for kind, refine in (("flat", ""), ("hnsw", ""), ("ivfpq", cfg.ivfpq_refine), ("ivfpq", "none")):
        params = IndexParams.from_config(cfg, kind)
        params.ivfpq_refine = refine or params.ivfpq_refine
        t0, c0 = time.perf_counter(), time.process_time()
        index = build_index(base, params, progress=False)
        build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
        search(index, queries[:100], k)  # warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        sims, ids = search(index, queries, k, batch=len(queries))
        q_s, q_cpu = time.perf_counter() - t0, time.process_time() - c0
        if kind == "flat":
            exact_sims = sims
        recall = recall_at_k(ids, exact_sims, queries, base)
        rows.append({
            "index": f"{kind}+refine {refine}" if kind == "ivfpq" and refine != "none" else kind, "build_s": round(build_s, 2), "build_cpu_s": round(build_cpu, 2),
            "queries_per_s": round(len(queries) / q_s, 1), "queries_per_cpu_s": round(len(queries) / q_cpu, 1),
            "recall_at_10": round(recall, 4), "bytes": int(faiss.serialize_index(index).size),
            "params": {k2: v for k2, v in vars(params).items() if k2 not in ("extra", "index_type")} | params.extra,
        })
        print(f"  {kind}: {rows[-1]}", flush=True)
    return rows


def bench_guarded(base: np.ndarray, queries_n: int, cfg: RagConfig) -> dict:
    """Full neighbour retrieval (over-fetch + leakage mask + compaction) over a flat index."""
    n = len(base)
    rng = np.random.default_rng(0)
    qid = rng.integers(n // 20, size=n)  # ~20 pairs per query, like a search log
    pairs = pa.table({
        "query": [f"q{i}" for i in qid], "item_text": [f"t{i}" for i in range(n)],
        "split": np.where(qid % 5 < 3, "train", np.where(qid % 5 == 3, "valid", "test")).tolist(),
        "rsl": pa.array(rng.integers(1, 5, size=n), pa.int8()),
    })
    guard = Guard.from_pairs(pairs)
    rows = np.flatnonzero(guard.retrievable)
    index = build_index(base[rows], IndexParams("flat"), progress=False)
    want = cfg.k_neighbours + max(cfg.edge_window - cfg.k_neighbours, cfg.k_edge_cases)
    q_rows = np.arange(queries_n)
    t0, c0 = time.perf_counter(), time.process_time()
    got, _ = retrieve(index, base[:queries_n], q_rows, rows, guard, want, cfg.overfetch)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"indexed": len(rows), "queries": queries_n, "want": want, "seconds": round(dt, 2),
            "queries_per_s": round(queries_n / dt, 1), "queries_per_cpu_s": round(queries_n / cpu, 1), "full_rows": float((got >= 0).all(axis=1).mean())}


def to_markdown(res: dict) -> str:
    m = res["machine"]
    out = [
        "# rag: embedder and faiss index",
        "",
        f"Machine: {m['machine']}, torch {m['torch']} ({m['torch_threads']} threads), faiss {m['faiss']} "
        f"({m['faiss_threads']} threads); load average at start {m['load_average_at_start']}, at end "
        f"{res['load_average_at_end']}. Date: {m['date']}.",
        "",
        "The machine was shared: wall-clock rates are pessimistic; per-CPU-second rates (one thread, so",
        "about what one idle core gives) are the steadier figure.",
        "",
        f"MiniLM (all-MiniLM-L6-v2, sentence-transformers, batch {res['minilm']['batch_size']}): "
        f"**{res['minilm']['pairs_per_cpu_s']:,.0f} pair texts per CPU-second** "
        f"({res['minilm']['pairs_per_s']:,.0f}/s wall) over {res['minilm']['texts']:,} texts.",
        "",
    ]
    for name, rows in res["indexes"].items():
        n = res["n_vectors"] if name != "minilm_real" else res["minilm"]["texts"] - res["n_queries_real"]
        out += [f"{name} ({n:,} x {res['dim']}), recall@10 vs exact:", "",
                "| index | build CPU s (wall) | queries per CPU-s (wall) | recall@10 | size MB |",
                "|---|---:|---:|---:|---:|"]
        out += [f"| {r['index']} | {r['build_cpu_s']} ({r['build_s']}) | {r['queries_per_cpu_s']:,.0f} "
                f"({r['queries_per_s']:,.0f}) | {r['recall_at_10']:.4f} | {r['bytes'] / 1e6:.1f} |" for r in rows]
        out.append("")
    g = res["guarded_retrieval"]
    out.append(f"Guarded neighbour retrieval (flat, {g['indexed']:,} indexed, {g['want']} allowed candidates per "
               f"pair, leakage mask + compaction): **{g['queries_per_cpu_s']:,.0f} pairs per CPU-second** "
               f"({g['queries_per_s']:,.0f}/s wall).")
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="vectors in the index part")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--texts", type=int, default=3000, help="texts for the MiniLM part")
    ap.add_argument("--out", default=str(ROOT / "results"))
    ap.add_argument("--threads", type=int, default=1,
                    help="torch and faiss threads (1: steady numbers on a shared 2-core box; 0 = library default)")
    args = ap.parse_args()
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
        faiss.omp_set_num_threads(args.threads)
    cfg = RagConfig()
    dim = 384
    res: dict = {"machine": machine(), "n_vectors": args.n, "dim": dim, "n_queries": args.queries,
                 "config": vars(cfg), "indexes": {}}
    print("MiniLM throughput ...", flush=True)
    res["minilm"], real = bench_minilm(args.texts, cfg.batch_size)
    print(f"  {res['minilm']}", flush=True)
    for kind in ("clustered", "uniform"):
        print(f"{kind} {args.n} x {dim} ...", flush=True)
        x = vector_set(kind, args.n + args.queries, dim)
        res["indexes"][kind] = bench_indexes(x[: args.n], x[args.n:], cfg)
    print("real MiniLM vectors ...", flush=True)
    nq = min(500, len(real) // 5)
    res["n_queries_real"] = nq
    res["indexes"]["minilm_real"] = bench_indexes(real[nq:], real[:nq], cfg)
    print("guarded retrieval ...", flush=True)
    res["guarded_retrieval"] = bench_guarded(vector_set("clustered", args.n, dim), min(10_000, args.n), cfg)
    res["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    md = to_markdown(res)
    (out / "rag.json").write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    (out / "rag.md").write_text(md, encoding="utf-8")
    print(json.dumps(res, indent=2))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
