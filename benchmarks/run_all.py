"""Run every benchmark in this folder, then rebuild the README's benchmark section from results/.

Each ``bench_*.py`` writes ``results/<name>.json`` and ``results/<name>.md``; this script runs
them one after another (never in parallel: they time themselves on a 2-core machine), gathers the
markdown tables into ``results/summary.md`` and replaces the block between the README markers.
Benchmarks print numbers; they never assert timings.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
README = HERE.parent / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
# cheap to expensive; each one is independent
ORDER = ["metrics", "data", "rag", "teacher", "student", "ctr"]
# results of demo_teacher_resume.py, demo_ctr_study.py and demo_student_pooling.py (10 minutes to an hour each):
# collected, never run from here
DEMO_PREFIXES = ("teacher_resume-", "ctr_study-", "student_pooling-")


def _headings_from(text: str, top: int) -> str:
    """Shift markdown headings so the file's highest heading is at level ``top``."""
    levels = [len(ln) - len(ln.lstrip("#")) for ln in text.splitlines() if ln.startswith("#")]
    if not levels:
        return text
    shift = top - min(levels)
    return "\n".join(("#" * shift + ln) if ln.startswith("#") and shift > 0 else
                     (ln[-shift:] if ln.startswith("#") and shift < 0 else ln) for ln in text.splitlines())


def collect_summary() -> str:
    parts = [
        "Numbers from `make bench` (benchmarks/run_all.py) and, last, the long demonstrations that it does",
        "not run (`benchmarks/demo_*.py`); each section names its machine and date; raw JSON in",
        "benchmarks/results/.",
        "",
    ]
    demos = sorted(p for prefix in DEMO_PREFIXES for p in RESULTS.glob(f"{prefix}*.md"))
    for md in [RESULTS / f"{name}.md" for name in ORDER] + demos:
        if md.is_file():
            parts.append(_headings_from(md.read_text(encoding="utf-8").strip(), top=3))
            parts.append("")
    return "\n".join(parts).strip() + "\n"


def update_readme(summary: str) -> bool:
    if not README.is_file():
        return False
    text = README.read_text(encoding="utf-8")
    if START not in text or END not in text:
        return False
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{summary}\n{END}{tail}", encoding="utf-8")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated subset of: " + ",".join(ORDER))
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite README.md")
    parser.add_argument("--collect-only", action="store_true", help="run nothing; rebuild summary + README")
    args = parser.parse_args()
    names = [] if args.collect_only else [n for n in (args.only.split(",") if args.only else ORDER) if n]
    failed = []
    for name in names:
        script = HERE / f"bench_{name}.py"
        if not script.is_file():
            print(f"[bench] {name}: {script.name} not found, skipped")
            continue
        print(f"[bench] {name} ...", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(script)], cwd=HERE.parent)
        print(f"[bench] {name} finished rc={rc} in {time.perf_counter() - t0:.0f}s", flush=True)
        if rc != 0:
            failed.append(name)
    RESULTS.mkdir(parents=True, exist_ok=True)
    summary = collect_summary()
    (RESULTS / "summary.md").write_text(summary, encoding="utf-8")
    if not args.no_readme and update_readme(summary):
        print("[bench] README.md benchmark section updated")
    if failed:
        print(f"[bench] failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
