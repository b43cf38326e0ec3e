"""Evaluation equals scikit-learn; ONNX exports (fp32/int8) match PyTorch."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from sklearn.preprocessing import StandardScaler

from llm2ctr.artifacts import read_manifest
from llm2ctr.student.artifact import load_student
from llm2ctr.student.evaluation import classification_metrics, linear_probe, student_outputs
from llm2ctr.student.jobs import load_training_data, run_eval, run_export, run_train

from .conftest import small_config


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory):
    """All three variants trained briefly on a copy of the world."""
    wd = tmp_path_factory.mktemp("trained") / "w"
    shutil.copytree(world, wd)
    cfg = small_config(wd, epochs=2, lr=1e-2)
    for v in ("sft", "mse", "sft+mse"):
        run_train(cfg, v)
    return cfg


def test_classification_metrics_equal_sklearn():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    p[:5] = 0  # some class imbalance
    m = classification_metrics(y, p)
    assert m["accuracy"] == accuracy_score(y, p)
    assert m["macro_f1"] == f1_score(y, p, average="macro")
    prec, rec, f1, sup = precision_recall_fscore_support(y, p, labels=[0, 1, 2, 3], zero_division=0)
    names = ["1:irrelevant", "2:complement", "3:substitute", "4:exact"]
    for i, n in enumerate(names):
        assert m["per_class"][n]["f1-score"] == pytest.approx(f1[i])
        assert m["per_class"][n]["support"] == sup[i]


def test_eval_report_matches_independent_computation(trained):
    cfg = trained
    res = run_eval(cfg)
    out = cfg.stage_dir("student", "eval")
    assert read_manifest(out, "student_eval")["counts"]["variants"] == 3
    report = json.loads((out / "eval.json").read_text())
    models = {r["model"] for r in report["rows"]}
    assert {"TF-IDF + LR", "BM25/overlap + LR", "teacher probe (RAG prompt)", "student sft+mse",
            "student sft+mse (probe)", "student sft", "student mse (probe)"} <= models
    assert "student mse" not in models  # the mse-only head was never trained: probe only
    for r in report["rows"]:
        assert set(r) >= {"model", "split", "macro_f1_mean", "macro_f1_sd", "accuracy_mean", "n_seeds"}
    assert (out / "distillation.png").stat().st_size > 1000
    assert "| student sft+mse |" in res["table"] and "teacher probe" in (out / "eval.md").read_text()
    # recompute the sft+mse head metrics (its tuned offsets live in the classifier bias) and the cosine
    model, tok = load_student(cfg.stage_dir("student", "model"))
    data, _, _ = load_training_data(cfg, tok)
    test = data.subset((data.splits == "test") & (data.labels >= 0))
    pred = student_outputs(model, test)
    row = next(r for r in report["rows"] if r["model"] == "student sft+mse" and r["split"] == "all")
    y_hat = pred["logits"].argmax(1)
    assert row["accuracy_mean"] == pytest.approx(accuracy_score(test.labels, y_hat), abs=1e-4)
    assert row["macro_f1_mean"] == pytest.approx(
        f1_score(test.labels, y_hat, average="macro", labels=[0, 1, 2, 3], zero_division=0), abs=1e-4)
    a, b = pred["projection"], test.teacher
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert row["cosine_to_teacher_mean"] == pytest.approx(float(cos.mean()), abs=1e-3)


def test_table_splits_seen_and_unseen_queries():
    """A test row is `seen` exactly when its query has training rows; metrics per split are sklearn's."""
    from llm2ctr.student.evaluation import by_split, split_masks

    train_q = np.array(["a", "b", "b", "c"], dtype=object)
    test_q = np.array(["b", "d", "a", "e", "e"], dtype=object)
    masks = split_masks(train_q, test_q)
    assert masks["seen"].tolist() == [True, False, True, False, False]
    assert masks["unseen"].tolist() == [False, True, False, True, True] and masks["all"].all()
    y, p = np.array([0, 1, 2, 3, 3]), np.array([0, 1, 1, 3, 0])
    res = by_split(y, p, masks)
    assert res["seen"]["n"] == 2 and res["seen"]["accuracy"] == 0.5
    assert res["unseen"]["n"] == 3 and res["unseen"]["accuracy"] == pytest.approx(2 / 3)
    assert set(by_split(y, p, split_masks(test_q, test_q))) == {"all", "seen"}  # no empty split


def test_linear_probe_is_sklearns():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(120, 6)), rng.integers(0, 4, 120)
    s = StandardScaler().fit(x[:80])
    ref = LogisticRegression(max_iter=1000, random_state=0).fit(s.transform(x[:80]), y[:80]).predict(s.transform(x[80:]))
    assert np.array_equal(linear_probe(x[:80], y[:80], x[80:]), ref)


def test_export_onnx_parity_on_a_new_batch_shape(trained):
    from llm2ctr.student.export import onnx_session, run_onnx
    from llm2ctr.student.tokenization import encode_pairs

    cfg = trained
    res = run_export(cfg)
    out = cfg.stage_dir("student", "export")
    assert res["onnx_parity"]["max_abs_diff_pooled"] < 1e-4
    assert res["int8_parity"]["pooled_cosine_mean"] > 0.99
    model, tok = load_student(cfg.stage_dir("student", "model"))
    b = encode_pairs(tok, ["acme red boot", "x"], ["acme red boot sale new classic premium", "orbo lamp"], 16)
    for name in ("model.onnx", "model_int8.onnx"):
        got = run_onnx(onnx_session(out / "onnx" / name), b)
        with torch.no_grad():
            ref = model(**b)
        tol = 1e-4 if name == "model.onnx" else 0.1
        np.testing.assert_allclose(got["pooled"], ref.pooled.numpy(), atol=tol)
        np.testing.assert_allclose(got["logits"], ref.logits.numpy(), atol=tol)


def test_model_card_and_manifest(trained):
    d = trained.stage_dir("student", "model")
    card = (d / "README.md").read_text()
    for section in ("## Training", "teacher: synthetic-bow-teacher", "## Validation metrics", "## Intended use and limits"):
        assert section in card
    m = read_manifest(d, "student")
    assert m["variant"] == "sft+mse" and m["teacher_dim"] == 32 and "teacher_0" in m["inputs"]
