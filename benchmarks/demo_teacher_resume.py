"""At-scale check of `llm2ctr teacher embed`: killed with SIGKILL and restarted == uninterrupted.

The test suite shows the property on 480 pairs and a tiny model; this script shows it on the
quickstart teacher (packaged all-MiniLM-L6-v2 on the RAG prompts) over a synthetic catalogue of
``--pairs`` pairs (100,000 by default), using the real CLI in subprocesses:

1. ``llm2ctr pipeline run --config configs/quickstart.yaml --stages pairs,rag_index,rag_neighbours``
   with ``data.synth.n_queries = pairs / pairs_per_query``;
2. ``llm2ctr teacher embed --config configs/quickstart.yaml --out .../uninterrupted``;
3. the same command into ``.../killed``, SIGKILLed once ``--kill-at`` of its shards are on disk,
   then the same command again;
4. compares the two stores shard by shard, byte for byte, and the manifests' content hashes.

Writes ``benchmarks/results/teacher_resume.json`` and ``.md`` (timings, the progress lines the
runs printed, the comparison). Runs take ~40 minutes each on a 2-core CPU at 100k pairs; nothing
here asserts a timing. Exit status 1 if the stores differ.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
CONFIG = ROOT / "configs" / "quickstart.yaml"
PAIRS_PER_QUERY = 20  # configs/quickstart.yaml data.synth.pairs_per_query
sys.path.insert(0, str(ROOT))
from _machine import cpu_description  # noqa: E402


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "llm2ctr", *args]


def last_progress_line(log: Path) -> str:
    """The last tqdm line of a log (tqdm rewrites its line with carriage returns)."""
    lines = [seg.strip() for seg in log.read_text(errors="replace").replace("\r", "\n").splitlines()]
    bars = [ln for ln in lines if ln.startswith("teacher embed")]
    return bars[-1] if bars else ""


def embed(workdir: Path, out: Path, log: Path, overrides: list[str], kill_at: float | None = None) -> dict:
    """Run `teacher embed` into ``out``; with ``kill_at``, SIGKILL it once that share of shards exists."""
    cmd = cli("teacher", "embed", "--config", str(CONFIG), f"workdir={workdir}", *overrides, "--out", str(out))
    t0 = time.perf_counter()
    with open(log, "ab") as fh:
        fh.write(f"\n$ {' '.join(cmd[2:])}\n".encode())
        fh.flush()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        info: dict = {"command": " ".join(["llm2ctr", *cmd[3:]])}
        if kill_at is not None:
            work_glob = f".{out.name}.work-*"
            n_shards = None
            while proc.poll() is None:
                if n_shards is None:  # the job writes its plan before the first shard
                    plans = list(out.parent.glob(f"{work_glob}/plan.json"))
                    n_shards = json.loads(plans[0].read_text())["n_shards"] if plans else None
                done = len(list(out.parent.glob(f"{work_glob}/shard-*.arrow")))
                if n_shards is not None and done >= max(1, int(kill_at * n_shards)):
                    os.killpg(proc.pid, signal.SIGKILL)
                    info |= {"killed_after_shards": done, "n_shards": n_shards}
                    break
                time.sleep(0.5)
        proc.wait()
    info |= {"returncode": proc.returncode, "wall_s": round(time.perf_counter() - t0, 1),
             "progress": last_progress_line(log)}
    return info


def compare(a: Path, b: Path) -> dict:
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
    shards_a, shards_b = ma["shards"], mb["shards"]
    same = [n for n in shards_a if n in shards_b and (a / n).read_bytes() == (b / n).read_bytes()]
    from llm2ctr.teacher.store import load_teacher_embeddings

    keys, vecs = load_teacher_embeddings(b)
    return {
        "content_hash_uninterrupted": ma["content_hash"], "content_hash_killed": mb["content_hash"],
        "shards": len(shards_a), "identical_shards": len(same),
        "rows": ma["counts"]["rows"], "unique_prompts": ma["counts"]["unique_prompts"],
        "tokens": ma["counts"]["tokens"], "unique_pair_ids_killed": len(set(keys)), "dim": int(vecs.shape[1]),
        "leftover_work_dirs": [p.name for p in a.parent.glob(".*.work-*")],
        "identical": ma["content_hash"] == mb["content_hash"] and shards_a == shards_b
        and len(same) == len(shards_a) and len(set(keys)) == len(keys) == ma["counts"]["rows"],
    }


def write_results(res: dict, tag: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    name = f"teacher_resume{'-' + tag if tag else ''}"
    (RESULTS / f"{name}.json").write_text(json.dumps(res, indent=2) + "\n")
    a, k, r, c = res["uninterrupted"], res["killed"], res["resumed"], res["comparison"]
    done_before = k.get("killed_after_shards", 0)
    md = [
        f"## Teacher embed, {res['pairs']:,} pairs: SIGKILL + restart vs uninterrupted ({res['teacher']})",
        "",
        f"Machine: {res['machine']}. Date: {res['date']}.",
        f"`python benchmarks/demo_teacher_resume.py {res['argv']}`",
        "",
        "| run | wall | shards embedded |",
        "|---|---:|---:|",
        f"| prepare: pairs, rag index, neighbours | {res['prepare_wall_s']:.0f} s | |",
        f"| uninterrupted | {a['wall_s']:.0f} s | {c['shards']} |",
        f"| killed with SIGKILL | {k['wall_s']:.0f} s | {done_before} of {k.get('n_shards')} |",
        f"| restarted (same command) | {r['wall_s']:.0f} s | {c['shards'] - done_before} |",
        "",
        f"Identical: **{c['identical']}**: {c['identical_shards']} of {c['shards']} shards byte-identical, "
        f"the same content hash `{c['content_hash_killed'][:16]}`, {c['rows']:,} rows "
        f"({c['unique_prompts']:,} unique prompts, {c['tokens']:,} tokens) and "
        f"{c['unique_pair_ids_killed']:,} distinct pair ids in the resumed store, dim {c['dim']}, "
        f"{len(c['leftover_work_dirs'])} work folders left behind.",
        "",
        "The progress bars as each run left them:",
        "",
        "```",
        f"uninterrupted  {a['progress']}",
        f"killed         {k['progress']}",
        f"restarted      {r['progress']}",
        "```",
        "",
    ]
    (RESULTS / f"{name}.md").write_text("\n".join(md))
    print("\n".join(md))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=100_000, help="synthetic pairs (multiple of 20)")
    ap.add_argument("--kill-at", type=float, default=0.5, help="share of shards written before the SIGKILL")
    ap.add_argument("--workdir", type=Path, default=ROOT / "runs" / "teacher-resume-demo")
    ap.add_argument("--tag", default="", help="results file suffix: results/teacher_resume-TAG.{json,md}")
    ap.add_argument("overrides", nargs="*", metavar="key=value",
                    help="config overrides for the teacher runs, e.g. teacher.model=PATH teacher.pooling=last")
    args = ap.parse_args()
    if args.pairs % PAIRS_PER_QUERY:
        ap.error(f"--pairs must be a multiple of {PAIRS_PER_QUERY} (pairs per query in the quickstart)")
    if not 0 < args.kill_at < 1:
        ap.error(f"--kill-at must be a share of the shards between 0 and 1 (exclusive), got {args.kill_at}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    wd = args.workdir.resolve()
    wd.mkdir(parents=True, exist_ok=True)
    log = wd / "demo.log"
    overrides = list(args.overrides)

    t0 = time.perf_counter()
    subprocess.run(cli("pipeline", "run", "--config", str(CONFIG), f"workdir={wd}",
                       f"data.synth.n_queries={args.pairs // PAIRS_PER_QUERY}",
                       "--stages", "pairs,rag_index,rag_neighbours"), check=True)
    prepare_s = time.perf_counter() - t0
    teacher_dir = wd / "teacher"
    teacher_dir.mkdir(exist_ok=True)
    unint, killed = teacher_dir / "uninterrupted", teacher_dir / "killed"
    for d in (unint, killed, *teacher_dir.glob(".*.work-*")):
        shutil.rmtree(d, ignore_errors=True)
    print("uninterrupted run ...", flush=True)
    a = embed(wd, unint, log, overrides)
    if a["returncode"] != 0:
        print(log.read_text()[-3000:])
        return 2
    print(f"  {a['wall_s']} s; killed run (SIGKILL at {args.kill_at:.0%} of shards) ...", flush=True)
    k = embed(wd, killed, log, overrides, kill_at=args.kill_at)
    if k["returncode"] != -signal.SIGKILL or killed.exists():
        print(f"the run was not killed mid-way: {k}")
        return 2
    print(f"  killed after {k['killed_after_shards']} of {k['n_shards']} shards; restarting ...", flush=True)
    r = embed(wd, killed, log, overrides)
    if r["returncode"] != 0:
        print(log.read_text()[-3000:])
        return 2
    import torch

    res = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores ({cpu_description()}), "
                   f"Python {platform.python_version()}, "
                   f"torch {torch.__version__} ({torch.get_num_threads()} threads)",
        "date": time.strftime("%Y-%m-%d"), "pairs": args.pairs, "kill_at": args.kill_at,
        "argv": " ".join(sys.argv[1:]), "overrides": overrides,
        "teacher": " ".join(overrides) or "quickstart teacher: packaged all-MiniLM-L6-v2, hf backend",
        "prepare_wall_s": round(prepare_s, 1), "uninterrupted": a, "killed": k, "resumed": r,
        "comparison": compare(unint, killed),
    }
    write_results(res, args.tag)
    return 0 if res["comparison"]["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
