"""The decision rule: offsets tuned for macro-F1, folded into the stock head; collapse is reported."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import torch

from llm2ctr.student.decision import head_collapse, macro_f1, tune_class_offsets

from .conftest import small_config


def test_offsets_recover_a_head_biased_towards_the_majority():
    rng = np.random.default_rng(0)
    y = rng.choice(4, size=2000, p=[0.1, 0.1, 0.2, 0.6])
    logits = np.eye(4)[y] * 1.0 + rng.normal(0, 0.6, (2000, 4))
    logits[:, 3] += 1.5  # a head that over-predicts the top level
    offsets, before, after = tune_class_offsets(logits, y)
    assert after > before + 0.05
    assert offsets[3] - offsets[:3].mean() < -0.3  # it learned to push the majority class down
    assert macro_f1(y, (logits + offsets).argmax(1)) == after


def test_offsets_change_nothing_on_a_calibrated_head():
    y = np.repeat(np.arange(4), 50)
    offsets, before, after = tune_class_offsets(np.eye(4)[y] * 5.0, y)
    assert before == after == 1.0 and not offsets.any()


def test_collapse_is_reported_only_when_the_labels_are_not_one_class():
    y = np.repeat(np.arange(4), 25)
    got = head_collapse(np.full(100, 3), y)
    assert got == {"class": 3, "predicted_share": 1.0, "true_share": 0.25}
    assert head_collapse(y, y) is None
    assert head_collapse(np.full(100, 3), np.full(100, 3)) is None


def test_tuned_rule_lives_in_the_exported_classifier_bias(world, tmp_path, caplog):
    """With decision_rule=tuned the saved head's argmax is the tuned rule (no llm2ctr code needed)."""
    from transformers import AutoModelForSequenceClassification

    from llm2ctr.student.artifact import load_student
    from llm2ctr.student.evaluation import student_outputs
    from llm2ctr.student.jobs import load_training_data, run_train

    wd = tmp_path / "w"
    shutil.copytree(world, wd)
    cfg = small_config(wd, epochs=1, variant="sft", decision_rule="tuned")
    with caplog.at_level("WARNING"):
        res = run_train(cfg)
    rule = res["decision_rule"]
    model, tok = load_student(cfg.stage_dir("student", "model"))
    stock = AutoModelForSequenceClassification.from_pretrained(cfg.stage_dir("student", "model"), subfolder="relevance")
    data, _, _ = load_training_data(cfg, tok)
    valid = data.subset((data.splits == "valid") & (data.labels >= 0))
    logits = student_outputs(model, valid)["logits"]
    assert macro_f1(valid.labels, logits.argmax(1)) == rule["valid_macro_f1"]
    assert rule["valid_macro_f1"] >= rule["valid_macro_f1_argmax"]
    b = valid.batch(np.arange(len(valid)))
    with torch.no_grad():
        got = stock(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits.numpy()
    np.testing.assert_allclose(got, logits, atol=1e-4)
    if "collapsed" in rule:
        assert "collapsed to one class" in caplog.text
    argmax_cfg = dataclasses.replace(cfg, student=dataclasses.replace(cfg.student, decision_rule="argmax"))
    assert run_train(argmax_cfg)["decision_rule"]["rule"] == "argmax"
