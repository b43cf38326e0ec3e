"""Throughput of the data world: synth (pairs/s), simulate (events/s), history (requests/s).

Each job runs end to end as the CLI runs it (compute + atomic Arrow writes + manifest hashing)
at about 1M pairs and 100k requests. Prints a table and writes results/data.json and data.md.
Timings depend on the machine's load: compare ratios within one run.

    .venv/bin/python benchmarks/bench_data.py            # 1M pairs, 100k requests
    .venv/bin/python benchmarks/bench_data.py --quick    # 100k pairs, 10k requests
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


def machine() -> dict[str, object]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"platform": platform.platform(), "machine": platform.machine(), "cpu_cores": os.cpu_count(),
            "python": platform.python_version(), "load_average_at_start": [round(x, 2) for x in load],
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def run(n_pairs: int, n_requests: int, workdir: Path) -> list[dict[str, object]]:
    from llm2ctr.config import load_config
    from llm2ctr.data.jobs import run_history, run_simulate, run_synth

    per_query = 24
    cfg = load_config(None, [
        f"workdir={workdir}", "data.synth.items_per_category=6000", f"data.synth.pairs_per_query={per_query}",
        f"data.synth.n_queries={n_pairs // per_query}", f"data.simulate.n_requests={n_requests}",
        f"data.simulate.n_users={max(100, n_requests // 10)}",
    ])
    rows = []
    t = time.perf_counter()
    out = run_synth(cfg)
    dt = time.perf_counter() - t
    rows.append({"job": "synth", "rows": out["pairs_rows"], "unit": "pairs", "seconds": round(dt, 2),
                 "rows_per_s": round(out["pairs_rows"] / dt), "detail": f"{out['queries']} queries, "
                 f"{out['items']} items, rsl-4 share {out['label_mix']['4']}"})
    t = time.perf_counter()
    out = run_simulate(cfg)
    dt = time.perf_counter() - t
    rows.append({"job": "simulate", "rows": out["event_rows"], "unit": "events", "seconds": round(dt, 2),
                 "rows_per_s": round(out["event_rows"] / dt),
                 "detail": f"{out['requests']} requests, {out['counterfactual_rows']} counterfactual rows, "
                 f"CTR {out['ctr']}, exposed rsl-4 share {out['exposed_rsl4_share']}"})
    t = time.perf_counter()
    out = run_history(cfg)
    dt = time.perf_counter() - t
    rows.append({"job": "history", "rows": out["requests"], "unit": "requests", "seconds": round(dt, 2),
                 "rows_per_s": round(out["requests"] / dt),
                 "detail": f"mean history {out['mean_hist_len']}, mean cross-user {out['mean_cross_len']}"})
    return rows


def to_markdown(rows: list[dict[str, object]], info: dict[str, object]) -> str:
    lines = [
        "### Data world throughput (`benchmarks/bench_data.py`)",
        "",
        f"{info['machine']}, {info['cpu_cores']} CPU cores, {info['platform']}, Python {info['python']}; "
        f"load average at start {info['load_average_at_start']}; {info['date']}. End to end per job "
        "(compute + Arrow writes + manifest).",
        "",
        "| job | rows | seconds | rows/s | detail |",
        "|---|---:|---:|---:|---|",
    ]
    lines += [f"| {r['job']} | {r['rows']:,} {r['unit']} | {r['seconds']} | {r['rows_per_s']:,} | {r['detail']} |"
              for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true", help="100k pairs, 10k requests")
    ap.add_argument("--no-save", action="store_true", help="print only")
    args = ap.parse_args()
    if args.quick:
        args.pairs, args.requests = 100_000, 10_000
    info = machine()
    with tempfile.TemporaryDirectory() as tmp:
        rows = run(args.pairs, args.requests, Path(tmp))
    md = to_markdown(rows, info)
    print(md)
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "data.json").write_text(json.dumps({"machine": info, "results": rows}, indent=2) + "\n")
        (RESULTS / "data.md").write_text(md)


if __name__ == "__main__":
    main()
