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
from llm2ctr.student.evaluation import classification_metrics, linear_probe, predict
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
    names = [r["variant"] for r in report["results"]]
    assert names == ["sft+mse", "sft", "mse", "teacher probe"]
    assert "| sft+mse |" in res["table"] and "teacher probe" in (out / "eval.md").read_text()
    # recompute the sft+mse head metrics and teacher cosine from scratch
    model, tok = load_student(cfg.stage_dir("student", "model"))
    data, _, _ = load_training_data(cfg, tok)
    test = data.subset(data.splits == "test")
    pred = predict(model, test)
    lab = test.labels >= 0
    head = report["results"][0]["head"]
    assert head["accuracy"] == accuracy_score(test.labels[lab], pred["logits"][lab].argmax(1))
    assert head["macro_f1"] == f1_score(test.labels[lab], pred["logits"][lab].argmax(1), average="macro",
                                        labels=[0, 1, 2, 3], zero_division=0)
    a, b = pred["projection"], test.teacher
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    unseen = report["results"][0]["teacher_unseen_queries"]
    assert unseen["n"] == len(test) and unseen["cosine"] == pytest.approx(float(cos.mean()), rel=1e-5)
    assert "head" not in report["results"][2]  # the mse-only head was never trained: probe only


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
