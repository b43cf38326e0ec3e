"""The long-history user tower against the truncated sequence, on heavy users: quality and samples/s.

World: the quickstart's catalogue and pairs (and its trained student, for the text cache), with a
click log where 80 users share 8,000 requests (~1,000 impressions each, so a request sees up to
hundreds of earlier behaviours; ``configs/heavy-users.yaml``). Models, each over ``--seeds`` seeds:

- ``v2_frozen``: PRECTR-V2 (encoder frozen) with target attention over the last 20 behaviours;
- ``v2_frozen_longhist`` at history lengths 20 / 200 / 1,000 (``ctr.long_history_len``);
- ``dnn`` and ``dnn_oracle_sensitivity``: the control (is the user's relevance sensitivity, which a
  long history reveals, worth AUC in this world at all?).

Quality: AUC against the simulator's true click probability (exposed and all-candidates test
sets), mean ± sd over seeds, and the paired bootstrap interval of each tower minus the truncated
model (requests resampled, seeds pooled: the study's method). Speed: training samples/s and
inference samples/s on the exposed test set.

    .venv/bin/python benchmarks/bench_long_history.py --reuse-from runs/quickstart
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _machine import cpu_description  # noqa: E402

RESULTS = HERE / "results"
LENGTHS = (20, 200, 1000)


def prepare_world(cfg, reuse_from: Path) -> None:
    """Link the reused stages, then simulate the heavy-user log and its history (skipped when done)."""
    from llm2ctr.data.jobs import run_history, run_simulate

    work = Path(cfg.workdir)
    (work / "data").mkdir(parents=True, exist_ok=True)
    for part in ("data/catalogue", "data/pairs", "rag", "teacher", "student"):
        link = work / part
        if not link.exists():
            link.symlink_to((reuse_from / part).resolve(), target_is_directory=True)
    if not (work / "data" / "events" / "manifest.json").is_file():
        run_simulate(cfg)
    if not (work / "data" / "history" / "manifest.json").is_file():
        run_history(cfg)


def with_ctr(cfg, **changes):
    return dataclasses.replace(cfg, ctr=dataclasses.replace(cfg.ctr, **changes))


def step_speed(cfg, prepared, model: str, changes: dict, steps: int = 12, warmup: int = 2) -> dict:
    """Training (forward + backward + Adam) and inference samples/s of one fresh model, timed on the
    same batches for every variant: the quality runs' own samples/s move with the machine's load."""
    import torch

    from llm2ctr.ctr.baselines import build_model
    from llm2ctr.ctr.jobs import TextContexts
    from llm2ctr.ctr.registry import get_spec

    cfg_s = with_ctr(cfg, **changes)
    ctx = TextContexts(cfg_s, prepared).get("none" if model.startswith("dnn") else "distilled")
    torch.manual_seed(0)
    m = build_model(get_spec(model), ctx, prepared.spec, cfg_s.ctr)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    batches = list(zip(range(steps + warmup), prepared.reader("train").batches(cfg.ctr.batch_size), strict=False))
    n, seconds = 0, 0.0
    for i, batch in batches:
        t0 = time.perf_counter()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(m(batch)["logit"], batch["label"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= warmup:
            seconds += time.perf_counter() - t0
            n += int(batch["label"].shape[0])
    m.eval()
    reader = prepared.reader("test")
    t0 = time.perf_counter()
    with torch.no_grad():
        rows = sum(int(m(b)["logit"].shape[0]) for b in reader.batches(4096))
    return {"train_samples_per_s": round(n / seconds, 1), "infer_samples_per_s": round(rows / (time.perf_counter() - t0), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(ROOT / "configs" / "heavy-users.yaml"))
    ap.add_argument("--reuse-from", default="runs/quickstart", help="workdir with catalogue, pairs and a student")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--lengths", default=",".join(map(str, LENGTHS)))
    ap.add_argument("--boot", type=int, default=200)
    ap.add_argument("--speed-only", action="store_true", help="only the samples/s table (no training runs)")
    args = ap.parse_args()

    import numpy as np

    from llm2ctr.config import load_config
    from llm2ctr.ctr.intervals import paired_effect
    from llm2ctr.ctr.jobs import TextContexts, train_one
    from llm2ctr.ctr.prepare import prepare
    from llm2ctr.ctr.registry import get_spec
    from llm2ctr.ctr.study import load_eval_set, score_models
    from llm2ctr.ctr.trainer import predict

    cfg = load_config(args.config)
    prepare_world(cfg, Path(args.reuse_from))
    prepared = prepare(cfg)
    lengths = [int(x) for x in args.lengths.split(",")]
    base = Path(cfg.workdir) / "ctr" / "long_history"
    runs: list[tuple[str, str, dict]] = [("truncated", "v2_frozen", {}), ("dnn", "dnn", {}),
                                         ("dnn_oracle", "dnn_oracle_sensitivity", {})]
    runs += [(f"tower_{n}", "v2_frozen_longhist", {"long_history_len": n}) for n in lengths]
    if args.speed_only:
        table = {label: {"model": model, **changes, **step_speed(cfg, prepared, model, changes)}
                 for label, model, changes in runs}
        load = os.getloadavg()
        out = {"machine": cpu_description(), "date": time.strftime("%Y-%m-%d"), "load_average": load,
               "batch_size": cfg.ctr.batch_size, "speed": table}
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "long_history_speed.json").write_text(json.dumps(out, indent=2))
        lines = [f"# Long-history tower: samples/s ({out['machine']}, {out['date']}, load {load[0]:.1f})", "",
                 f"Batch {cfg.ctr.batch_size}; training = forward + backward + Adam, 12 timed steps after 2; "
                 "inference = the exposed test set at batch 4096.", "",
                 "| model | history read | train samples/s | infer samples/s |", "|---|---|---:|---:|"]
        for label, r in table.items():
            read = f"last {r['long_history_len']} (tower)" if "long_history_len" in r else (
                "last 20 (target attention)" if label == "truncated" else "none")
            lines.append(f"| {r['model']} | {read} | {r['train_samples_per_s']} | {r['infer_samples_per_s']} |")
        (RESULTS / "long_history_speed.md").write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
        return
    speed: dict[str, dict] = {}
    roots: dict[str, list[Path]] = {}
    t_all = time.perf_counter()
    for label, model, changes in runs:
        for s in range(args.seeds):
            cfg_s = with_ctr(cfg, seed=cfg.ctr.seed + s, **changes)
            root = base / label / f"seed_{s}"
            summary = train_one(cfg_s, prepared, get_spec(model), TextContexts(cfg_s, prepared), True, root)
            roots.setdefault(label, []).append(root)
            if s == 0:  # inference speed of the first seed's model, on the exposed test set
                from llm2ctr.ctr.baselines import build_model

                ctx = TextContexts(cfg_s, prepared).get("none" if model.startswith("dnn") else "distilled")
                m = build_model(get_spec(model), ctx, prepared.spec, cfg_s.ctr)
                from safetensors.torch import load_file

                m.load_state_dict(load_file(str(root / "models" / model / "model.safetensors")))
                reader = prepared.reader("test")
                t0 = time.perf_counter()
                predict(m, reader, 4096, progress=False)
                infer = reader.num_rows / (time.perf_counter() - t0)
                speed[label] = {"model": model, "train_samples_per_s": summary["samples_per_s"],
                                "infer_samples_per_s": round(infer, 1), "best_epoch": summary["best_epoch"],
                                **changes}
            print(f"{label} seed {s}: {summary['samples_per_s']} samples/s", flush=True)
    rng = np.random.default_rng(2602)
    sets = {label: load_eval_set(prepared, label, cfg.ctr.cold_start_max_hist, args.boot, rng)
            for label, f in (("exposed", "test"), ("counterfactual", "cf_test")) if prepared.has(f)}
    scored = {label: score_models(roots[label], [speed[label]["model"]], sets, None) for label in roots}
    rows, contrasts = {}, []
    for label in roots:
        model = speed[label]["model"]
        row = {}
        for set_name in sets:
            v = scored[label].points[(model, set_name, "auc_truth")]
            row[set_name] = {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else float("nan")}
        rows[label] = {**row, **speed[label]}
    pairs = [(f"tower_{n}", "truncated") for n in lengths] + [("dnn_oracle", "dnn")]
    for a, b in pairs:
        for set_name in sets:
            ka = (speed[a]["model"], set_name, "auc_truth")
            kb = (speed[b]["model"], set_name, "auc_truth")
            eff = paired_effect(scored[a].points[ka], scored[b].points[kb], scored[a].reps[ka], scored[b].reps[kb], rng)
            contrasts.append({"a": a, "b": b, "set": set_name, **{k: eff[k] for k in ("effect", "ci_low", "ci_high")}})
    hist = prepared.reader("test").column("long_end") - prepared.reader("test").column("long_start")
    result = {
        "machine": cpu_description(), "date": time.strftime("%Y-%m-%d"), "seeds": args.seeds,
        "workdir": str(cfg.workdir), "counts": prepared.counts,
        "test_history_length": {"median": float(np.median(hist)), "p90": float(np.percentile(hist, 90)),
                                "max": int(hist.max()), "share_over_200": float((hist > 200).mean())},
        "rows": rows, "contrasts": contrasts, "seconds": round(time.perf_counter() - t_all, 1),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "long_history.json").write_text(json.dumps(result, indent=2))
    lines = [f"# Long-history user tower vs truncated sequence ({result['machine']}, {result['date']})", "",
             f"Heavy-user world ({cfg.data.simulate.n_users} users, {cfg.data.simulate.n_requests} requests); "
             f"history length before a test request: median {result['test_history_length']['median']:.0f}, "
             f"p90 {result['test_history_length']['p90']:.0f}, max {result['test_history_length']['max']}. "
             f"{args.seeds} seeds; AUC against the true click probability.", "",
             "| model | history read | AUC vs truth exposed | AUC vs truth all-cand. | train samples/s (loaded "
             "machine; see long_history_speed.md) | infer samples/s |", "|---|---|---|---|---:|---:|"]
    for label, r in rows.items():
        read = f"last {r['long_history_len']} (tower)" if "long_history_len" in r else (
            "last 20 (target attention)" if label == "truncated" else "none (+ true sensitivity)"
            if label == "dnn_oracle" else "none")
        cells = [f"{r[s]['mean']:.4f} ± {r[s]['sd']:.4f}" for s in ("exposed", "counterfactual") if s in r]
        lines.append(f"| {r['model']} | {read} | " + " | ".join(cells) +
                     f" | {r['train_samples_per_s']} | {r['infer_samples_per_s']} |")
    lines += ["", "Paired effects (A − B, 95% interval over requests and seeds):", "",
              "| A | B | set | effect | 95% CI |", "|---|---|---|---:|---|"]
    for c in contrasts:
        lines.append(f"| {c['a']} | {c['b']} | {c['set']} | {c['effect']:+.4f} | "
                     f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] |")
    (RESULTS / "long_history.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
