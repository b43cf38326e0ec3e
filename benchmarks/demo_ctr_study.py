"""Time `llm2ctr ctr study --config configs/quickstart.yaml` from scratch and keep its tables.

The issue's bar: the seeded study of the quickstart world (3 seeds, the study's models, checks with
95% intervals) finishes in under 20 minutes on this project's 2-core machine. Needs a quickstart
workdir with data and a student (``make quickstart``, or ``llm2ctr pipeline run --config
configs/quickstart.yaml`` up to ``student_train``); removes its ``ctr/`` folder first (``--keep``
to reuse trained models), runs the study in a subprocess, and writes
``results/ctr_study-<tag>.{json,md}``: wall time, per-model training time, the checks and the
model table. Like demo_teacher_resume.py it is collected by run_all.py, never run by it.

    .venv/bin/python benchmarks/demo_ctr_study.py --workdir runs/quickstart --tag quickstart

The tables in results/ctr_study-quickstart.md were made on the 600-query, 10,000-request world,
the quickstart's until 2026-12-03; that world is now ``--config configs/quickstart-full.yaml
--workdir runs/quickstart-full``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _machine import cpu_description  # noqa: E402

RESULTS = HERE / "results"
REPO = HERE.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default="runs/quickstart")
    ap.add_argument("--config", default="configs/quickstart.yaml")
    ap.add_argument("--tag", default="quickstart")
    ap.add_argument("--keep", action="store_true", help="keep trained models (times only what is missing)")
    args = ap.parse_args()
    work = Path(args.workdir)
    if not (work / "student" / "model" / "manifest.json").is_file():
        print(f"{work}: no student; run `make quickstart` (or the pipeline up to student_train) first")
        return 2
    if not args.keep and (work / "ctr").exists():
        shutil.rmtree(work / "ctr")
    cli = REPO / ".venv" / "bin" / "llm2ctr"
    cmd = [str(cli) if cli.is_file() else "llm2ctr", "ctr", "study", "--config", args.config, f"workdir={work}"]
    load = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stderr[-4000:])
        return proc.returncode
    study = json.loads((work / "ctr" / "study" / "study.json").read_text())
    out = {"command": " ".join(cmd), "wall_seconds": round(wall, 1), "machine": cpu_description(),
           "cores": os.cpu_count(), "load_average_at_start": [round(x, 2) for x in load],
           "date": time.strftime("%Y-%m-%d", time.gmtime()), "study": study}
    study_md = (work / "ctr" / "study" / "study.md").read_text().split("\n", 1)[1]
    per_model = " · ".join(f"{m} {sum(t):.0f} s" for m, t in study.get("train_wall_seconds", {}).items())
    md = "\n".join([
        f"# ctr study, {args.tag}: {wall / 60:.1f} minutes ({out['date']}, {out['machine']}, {out['cores']} cores)", "",
        f"`{' '.join(cmd[1:])}` from scratch (no trained model), load average at start "
        f"{out['load_average_at_start'][0]}. Training time per model, all seeds: {per_model}.", "",
        study_md.replace("](study.png)", f"](ctr_study-{args.tag}.png)"),
    ])
    RESULTS.mkdir(exist_ok=True)
    shutil.copy2(work / "ctr" / "study" / "study.png", RESULTS / f"ctr_study-{args.tag}.png")
    (RESULTS / f"ctr_study-{args.tag}.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
    (RESULTS / f"ctr_study-{args.tag}.md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
