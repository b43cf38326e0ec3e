"""`pipeline run --config configs/real-pairs-example.yaml pipeline.pairs_source=FILE` writes the
distillation table: a user's labelled CSV in, lexical baselines, both teacher probes and the
students over seeds out, in report-ready rows."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.csv as pacsv

REPO = Path(__file__).resolve().parents[2]
STAGES = ["pairs", "rag_index", "rag_neighbours", "teacher", "teacher_plain", "student_tokenizer",
          "student_train", "student_eval"]


def test_real_pairs_csv_gets_the_distillation_table(tmp_path):
    from llm2ctr.config import load_config
    from llm2ctr.data.jobs import run_synth
    from llm2ctr.data.store import load_pairs
    from llm2ctr.pipeline import run_pipeline

    synth = load_config(None, [f"workdir={tmp_path / 'synth'}", "data.synth.n_categories=4",
                               "data.synth.items_per_category=40", "data.synth.n_queries=60",
                               "data.synth.pairs_per_query=6"])
    run_synth(synth)
    pairs = load_pairs(synth.stage_dir("data", "pairs"))
    csv = tmp_path / "labels.csv"
    cols = pairs.select(["query", "item_text", "rsl"]).rename_columns(["search_term", "product_title", "relevance"])
    pacsv.write_csv(cols, csv)
    cfg = load_config(str(REPO / "configs" / "real-pairs-example.yaml"), [
        f"workdir={tmp_path / 'run'}", f"pipeline.pairs_source={csv}", "student.d_model=32", "student.num_layers=1",
        "student.num_heads=2", "student.ffn_dim=64", "student.vocab_size=300", "student.epochs=1",
        "student.eval_seeds=2", "teacher.max_model_len=128"])
    run_pipeline(cfg, only=STAGES)

    report = json.loads((cfg.stage_dir("student", "eval") / "eval.json").read_text())
    rows = report["rows"]
    models = {r["model"] for r in rows}
    assert {"TF-IDF + LR", "BM25/overlap + LR", "teacher probe (RAG prompt)", "teacher probe (plain pair)",
            f"student {cfg.student.variant}", "student sft"} <= models
    for r in rows:
        assert set(r) >= {"model", "split", "macro_f1_mean", "macro_f1_sd", "accuracy_mean", "n_seeds"}
        assert 0.0 <= r["macro_f1_mean"] <= 1.0
    students = [r for r in rows if r["model"].startswith("student")]
    assert students and all(r["n_seeds"] == 2 for r in students)
    # pairs are split by query: every test query is unseen, and the table says so
    assert {r["split"] for r in rows} == {"all", "unseen"}
    assert report["targets"]["split"] == "unseen"
    assert "no `seen` row" in (cfg.stage_dir("student", "eval") / "eval.md").read_text()
