"""One report for the whole pipeline: data summary, distillation table + speed ratio, ranker table.

It only gathers what the stages wrote (student/eval, ctr/report, the pipeline's records, which
the pipeline passes in: this module does not import pipeline.py, which runs it) and adds
one measurement of its own: student vs teacher encoding speed on the same pairs in the same
process, because a speed ratio is only meaningful when both sides run on one machine at one time.
"""

from __future__ import annotations

import json
import shutil
import time
from typing import Any

import pyarrow.compute as pc

from llm2ctr.artifacts import atomic_dir, atomic_write_json, atomic_write_text, read_manifest, write_manifest
from llm2ctr.config import Config
from llm2ctr.data.store import load_pairs

SPEED_PAIRS = 2000


def _stamp_summary(records: dict[str, dict[str, Any]], stage: str) -> dict[str, Any]:
    stamp = records.get(stage)
    return {"seconds": stamp.get("seconds"), "summary": stamp.get("summary")} if stamp else {}


def _time_it(fn, *args) -> float:
    fn(*args)  # warm-up (allocations, lazy init)
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def measure_speed(cfg: Config, n: int = SPEED_PAIRS) -> dict[str, Any]:
    """Pairs/s of the student and of the teacher (hf backend) on the same test pairs, one process."""
    import torch

    from llm2ctr.student.artifact import encode_pairs, load_encoder, model_dir

    pairs = load_pairs(cfg.stage_dir("data", "pairs"))
    test = pairs.filter(pc.equal(pairs.column("split"), "test"))
    sample = (test if test.num_rows >= n else pairs).slice(0, n)
    queries, items = sample.column("query").to_pylist(), sample.column("item_text").to_pylist()
    model, tokenizer = load_encoder(model_dir(cfg))
    model.eval()
    bs = 256

    @torch.no_grad()
    def student_encode() -> None:
        for s in range(0, len(queries), bs):
            b = encode_pairs(tokenizer, queries[s : s + bs], items[s : s + bs], cfg.student.max_length)
            model.encode(**b)

    result: dict[str, Any] = {"pairs": len(queries), "threads": torch.get_num_threads()}
    result["student_pairs_per_s"] = len(queries) / _time_it(student_encode)
    if cfg.teacher.backend not in ("hf", "onnx"):
        result["teacher_note"] = f"teacher backend '{cfg.teacher.backend}' is not timed here (hf and onnx only)"
        return result
    from llm2ctr.teacher.backends import make_backend

    backend = make_backend(cfg.teacher)
    texts = [f"{q} [SEP] {t}" for q, t in zip(queries, items, strict=True)]
    try:
        result["teacher_pairs_per_s"] = len(texts) / _time_it(backend.embed, texts)
    finally:
        backend.close()
    result["teacher"] = cfg.teacher.model
    result["speed_ratio"] = result["student_pairs_per_s"] / result["teacher_pairs_per_s"]
    result["note"] = (
        "both encode the bare pair text (query [SEP] item); the teacher's real RAG prompts are "
        "longer, so the ratio against the deployed teacher is larger"
    )
    return result


def write_final_report(cfg: Config, records: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Write ``{workdir}/report/`` (report.md, report.json, PNGs) from the stages' artifacts.

    ``records``: the pipeline's record of each finished stage (``llm2ctr.pipeline.read_records``),
    for the data summary and the timings; without them those two sections are empty.
    """
    from llm2ctr.ctr import artifact as ctr_artifact
    from llm2ctr.student.artifact import EVAL_KIND, eval_dir

    records = records or {}
    student_eval = eval_dir(cfg)
    ctr_report = ctr_artifact.report_dir(cfg)
    read_manifest(student_eval, EVAL_KIND)
    read_manifest(ctr_report, ctr_artifact.REPORT_KIND)
    eval_json = json.loads((student_eval / "eval.json").read_text())
    speed = measure_speed(cfg)

    data = {s: _stamp_summary(records, s) for s in ("pairs", "simulate", "history")}
    lines = [
        "# llm2ctr pipeline report",
        "",
        f"Workdir `{cfg.workdir}`, created {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "## Data",
        "",
        "```json",
        json.dumps({k: v.get("summary") for k, v in data.items()}, indent=1, default=str)[:4000],
        "```",
        "",
        "## Distillation (held-out test split)",
        "",
        (student_eval / "eval.md").read_text().split("\n", 2)[-1].strip(),
        "",
        "### Speed: student vs teacher (same pairs, same process)",
        "",
        "| encoder | pairs/s |",
        "|---|---:|",
        f"| student ({cfg.student.num_layers} layers, d={cfg.student.d_model}) | {speed['student_pairs_per_s']:,.0f} |",
    ]
    if "teacher_pairs_per_s" in speed:
        lines += [
            f"| teacher ({speed['teacher']}) | {speed['teacher_pairs_per_s']:,.0f} |",
            "",
            f"Speed ratio: **{speed['speed_ratio']:.1f}×** ({speed['pairs']} pairs, "
            f"{speed['threads']} torch threads). {speed['note']}.",
        ]
    else:
        lines += ["", speed["teacher_note"]]
    ranker_md = (ctr_report / ctr_artifact.REPORT_MD).read_text()
    ranker_md = "\n".join(("#" + ln) if ln.startswith("#") else ln for ln in ranker_md.splitlines())
    study = ctr_artifact.study_dir(cfg)
    if (study / ctr_artifact.STUDY_MD).is_file():  # the seeded study: the ranker's headline table
        study_md = (study / ctr_artifact.STUDY_MD).read_text().split("\n", 1)[-1]
        study_md = "\n".join(("##" + ln) if ln.startswith("#") else ln for ln in study_md.splitlines())
        lines += ["", "## Ranker study (seeds and 95% intervals)", "", study_md.strip()]
    lines += ["", "## Ranker (first seed, per segment)", "", ranker_md]
    timings = {name: record.get("seconds") for name, record in records.items()}
    lines += ["", "## Stage timings (last run of each stage, seconds)", "", "| stage | seconds |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in timings.items()]

    out = cfg.stage_dir("report")
    with atomic_dir(out) as tmp:
        for png in [*ctr_report.glob("*.png"), *study.glob(ctr_artifact.STUDY_PNG)]:
            shutil.copy2(png, tmp / png.name)
        if (student_eval / "distillation.png").is_file():
            shutil.copy2(student_eval / "distillation.png", tmp / "distillation.png")
        atomic_write_text(tmp / "report.md", "\n".join(lines) + "\n")
        atomic_write_json(tmp / "report.json", {"data": data, "distillation": eval_json.get("rows", []),
                                                "distillation_targets": eval_json.get("targets", {}), "speed": speed,
                                                "stage_seconds": timings})
        write_manifest(tmp, kind="report", stage="pipeline.report", config=None,
                       inputs={"student_eval": student_eval, "ctr_report": ctr_report})
    print(f"[report] {out / 'report.md'}")
    return {"path": str(out), "speed": speed}
