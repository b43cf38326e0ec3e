"""AUC / GAUC speed: llm2ctr's O(n log n) numpy metrics vs scikit-learn and a per-user loop.

Synthetic test day: ``n`` impressions, n/20 users (20 impressions per user on average, Zipf-ish
activity), CTR about 5%, float32 model scores (so ties occur, as with real model outputs).
Writes results/metrics.json and results/metrics.md. Prints numbers; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_all import machine_line  # noqa: E402

from llm2ctr.artifacts import atomic_write_json, atomic_write_text  # noqa: E402
from llm2ctr.ctr.metrics import auc, evaluate, gauc  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def make_day(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Labels, float32 scores, user ids, and the same scores in float64 (not float32-exact)."""
    rng = np.random.default_rng(seed)
    n_users = max(1, n // 20)
    users = (rng.pareto(1.2, n) * n_users / 10).astype(np.int64) % n_users
    z = rng.normal(-3.2, 1.0, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int8)
    p64 = 1 / (1 + np.exp(-(z + rng.normal(0, 0.7, n))))
    return y, p64.astype(np.float32), users, p64


def best_of(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def gauc_loop(y: np.ndarray, p: np.ndarray, users: np.ndarray) -> float:
    """The straightforward reference: group rows by user, sklearn AUC per user, weighted mean."""
    order = np.argsort(users, kind="stable")
    bounds = np.flatnonzero(np.diff(users[order])) + 1
    num = den = 0.0
    for idx in np.split(order, bounds):
        yu = y[idx]
        if yu.min() == yu.max():
            continue
        num += len(idx) * roc_auc_score(yu, p[idx])
        den += len(idx)
    return num / den


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000000,10000000", help="comma-separated row counts")
    ap.add_argument("--loop-max", type=int, default=1_000_000, help="largest n for the per-user loop")
    ap.add_argument("--repeats", type=int, default=2, help="timings are the best of this many runs")
    args = ap.parse_args()
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        y, p, users, p64 = make_day(n)
        print(f"n={n:,}: {len(np.unique(users)):,} users, CTR {y.mean():.4f}", flush=True)
        t_ours, a_ours = best_of(lambda: auc(y, p), args.repeats)  # noqa: B023
        t_sk, a_sk = best_of(lambda: roc_auc_score(y, p), args.repeats)  # noqa: B023
        t_g, g = best_of(lambda: gauc(y, p, users), args.repeats)  # noqa: B023
        t_g64, _ = best_of(lambda: gauc(y, p64, users), args.repeats)  # noqa: B023
        t_eval, _ = best_of(lambda: evaluate(y, p, users), 1)  # noqa: B023
        row = {
            "n": n, "users": int(len(np.unique(users))), "gauc_users": g.users,
            "auc_ours_s": t_ours, "auc_sklearn_s": t_sk, "auc_abs_diff": abs(a_ours - a_sk),
            "gauc_ours_s": t_g, "gauc_ours_float64_s": t_g64, "evaluate_all_s": t_eval,
            "gauc_loop_s": None, "gauc_abs_diff": None,
        }
        if n <= args.loop_max:
            t_loop, g_loop = best_of(lambda: gauc_loop(y, p, users), 1)  # noqa: B023
            row.update(gauc_loop_s=t_loop, gauc_abs_diff=abs(g.gauc - g_loop))
        print(json.dumps(row), flush=True)
        rows.append(row)
    meta = {
        "machine": machine_line(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_at_start": os.getloadavg(),
        "repeats": args.repeats,
    }
    atomic_write_json(RESULTS / "metrics.json", {**meta, "rows": rows})
    md = [
        "# CTR metrics (AUC, GAUC)",
        "",
        f"{meta['machine']}; {meta['date']}; load average {meta['load_average_at_start'][0]:.1f} at start "
        f"(shared machine: compare ratios within this table); best of {args.repeats} runs. Synthetic day: 20 impressions "
        "per user on average, CTR ~5%, float32 scores. Per-user loop = group by user, sklearn "
        "`roc_auc_score` per user. |diff| = absolute difference of the values (equality check). "
        "GAUC f64: the same scores kept in float64 (dense-rank path instead of float32 bits).",
        "",
        "| rows | users | AUC ours (s) | AUC sklearn (s) | AUC \\|diff\\| | GAUC ours (s) | GAUC f64 (s) | GAUC loop (s) "
        "| GAUC \\|diff\\| | evaluate() all metrics (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        loop = "—" if r["gauc_loop_s"] is None else f"{r['gauc_loop_s']:.1f}"
        gd = "—" if r["gauc_abs_diff"] is None else f"{r['gauc_abs_diff']:.1e}"
        md.append(
            f"| {r['n']:,} | {r['users']:,} | {r['auc_ours_s']:.3f} | {r['auc_sklearn_s']:.3f} | "
            f"{r['auc_abs_diff']:.1e} | {r['gauc_ours_s']:.3f} | {r['gauc_ours_float64_s']:.3f} | {loop} | {gd} | {r['evaluate_all_s']:.3f} |"
        )
    atomic_write_text(RESULTS / "metrics.md", "\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
