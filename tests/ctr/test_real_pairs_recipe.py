"""The real-pairs recipe trains to convergence with its defaults: every model beats its best input.

A user's labelled CSV (here written from the synthetic catalogue with the example's column names)
goes through `configs/real-pairs-example.yaml` unchanged in every training setting (epochs, batch,
learning rate, schedule, early stopping): only the sizes are shrunk so the test takes a minute.
Before the defaults changed, every model scored validation AUC 0.46-0.52 on such a log (one epoch
of ~23 steps) while position alone ranked it at 0.67.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest

REPO = Path(__file__).resolve().parents[2]
SMALL = [  # sizes only; nothing that changes how a model trains
    "data.simulate.n_users=400", "data.simulate.n_requests=5000", "student.d_model=32", "student.num_layers=1",
    "student.num_heads=2", "student.ffn_dim=64", "student.vocab_size=800", "student.epochs=1",
    "ctr.hidden_dims=[64,32]", "ctr.hash_buckets=20011", "ctr.attn_dim=16", "ctr.num_threads=1",
]
MODELS = ["lr", "dnn", "wide_deep", "din", "prectr", "prectr_v2"]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    from llm2ctr.config import load_config
    from llm2ctr.data.jobs import run_synth
    from llm2ctr.data.store import load_pairs

    root = tmp_path_factory.mktemp("real_pairs")
    synth = load_config(None, [f"workdir={root / 'synth'}", "data.synth.n_categories=8",
                               "data.synth.items_per_category=150", "data.synth.n_queries=240",
                               "data.synth.pairs_per_query=16"])
    run_synth(synth)
    pairs = load_pairs(synth.stage_dir("data", "pairs"))
    csv = root / "labels.csv"
    table = pairs.select(["query", "item_text", "rsl"]).rename_columns(["search_term", "product_title", "relevance"])
    pacsv.write_csv(table, csv)
    cfg = load_config(str(REPO / "configs" / "real-pairs-example.yaml"),
                      [f"workdir={root / 'run'}", f"pipeline.pairs_source={csv}", *SMALL])
    return cfg


def test_every_model_beats_its_best_single_feature_on_validation(recipe):
    from llm2ctr.ctr import jobs
    from llm2ctr.ctr.metrics import auc
    from llm2ctr.ctr.prepare import prepare
    from llm2ctr.ctr.sanity import best_single_feature
    from llm2ctr.pipeline import run_pipeline
    from llm2ctr.student.jobs import run_train as train_student

    cfg = recipe
    defaults = type(cfg.ctr)()
    assert (cfg.ctr.epochs, cfg.ctr.lr, cfg.ctr.batch_size) == (defaults.epochs, defaults.lr, defaults.batch_size)
    run_pipeline(cfg, only=["pairs", "simulate", "history", "student_tokenizer"])
    train_student(cfg, variant="sft", out_dir=cfg.stage_dir("student", "model"))
    summary = jobs.run_train(cfg, MODELS, progress=False)
    prepared = prepare(cfg)
    valid = prepared.reader("valid")
    name, floor = best_single_feature(valid, prepared.spec, prepared.pairs)
    assert np.isfinite(floor) and floor > 0.55, (name, floor)
    y = valid.column("label")
    for model in MODELS:
        pred = np.load(cfg.stage_dir("ctr", "models", model, "pred_valid.npz"))["logit"]
        value = auc(y, pred)
        assert value > floor, f"{model}: validation AUC {value:.4f} <= best single feature {name} {floor:.4f}"
        assert summary["models"][model]["epochs_run"] > 1, summary["models"][model]
