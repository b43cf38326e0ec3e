"""Negative downsampling re-weighting, online hard negative mining, optimizer param groups,
the learning-rate schedule and early stopping on the validation loss."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from llm2ctr.ctr.trainer import _subsample, click_loss, make_optimizer


def test_downsampling_reweights_negatives_so_the_expected_loss_is_unbiased():
    g = torch.Generator().manual_seed(0)
    n = 200_000
    y = (torch.rand(n, generator=g) < 0.1).float()
    logit = torch.randn(n, generator=g)
    full = torch.nn.functional.binary_cross_entropy_with_logits(logit, y, reduction="sum") / n
    b = _subsample({"label": y, "logit": logit}, 0.25, torch.Generator().manual_seed(1))
    assert 0.3 * n < len(b["label"]) < 0.4 * n  # all positives + ~25% of negatives
    assert bool((b["weight"][b["label"] > 0.5] == 1).all()) and bool((b["weight"][b["label"] < 0.5] == 4).all())
    est = torch.nn.functional.binary_cross_entropy_with_logits(b["logit"], b["label"], weight=b["weight"], reduction="sum") / n
    assert abs(float(est) - float(full)) / float(full) < 0.02


def test_hard_negative_mining_keeps_the_hardest_negatives_and_all_positives():
    y = torch.tensor([1.0, 0, 0, 0, 0])
    logit = torch.tensor([0.0, 5.0, -5.0, 3.0, -3.0])  # hardest negatives: 5.0 and 3.0
    w = torch.ones(5)
    got = click_loss(logit, y, w, hard_neg_ratio=0.5)
    per = torch.nn.functional.binary_cross_entropy_with_logits(logit, y, reduction="none")
    torch.testing.assert_close(got, (per[0] + per[1] + per[3]) / 3)
    torch.testing.assert_close(click_loss(logit, y, w, 0.0), per.mean())


def test_encoder_gets_the_scaled_learning_rate():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Linear(2, 2)
            self.head = nn.Linear(2, 1)

    opt = make_optimizer(M(), 1e-3, 0.1)
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs == {"ranker": 1e-3, "encoder": 1e-4}
    assert sum(len(g["params"]) for g in opt.param_groups) == 4


# --- learning-rate schedule and early stopping ------------------------------------------------


def _run(ctr_config, tmp_path, model: str, *overrides: str, valid: bool = True):
    """Train ``model`` on the session world; returns (summary, trained model, prepared, cfg)."""
    from llm2ctr.ctr import jobs
    from llm2ctr.ctr.baselines import build_model, get_spec
    from llm2ctr.ctr.prepare import prepare
    from llm2ctr.ctr.trainer import train

    cfg = ctr_config(*overrides)
    p = prepare(cfg)
    spec = get_spec(model)
    torch.manual_seed(cfg.ctr.seed)
    net = build_model(spec, jobs.TextContexts(cfg, p).get("none"), p.spec, cfg.ctr)
    summary = train(net, spec, p.reader("train"), cfg.ctr, tmp_path, progress=False,
                    valid=p.reader("valid") if valid else None)
    return summary, net, p, cfg


def _log(out) -> list[dict]:
    return [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]


def test_schedule_shapes():
    from llm2ctr.ctr.schedule import LrSchedule

    cos = LrSchedule("cosine", total=100, warmup=10, min_ratio=0.05)
    assert [cos(s) for s in range(11)] == pytest.approx([s / 10 for s in range(11)])  # linear from 0
    decay = [cos(s) for s in range(10, 100)]
    assert all(a > b for a, b in zip(decay, decay[1:], strict=False)) and decay[-1] == pytest.approx(0.05)
    assert cos(55) == pytest.approx(0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * 45 / 89)))
    lin = LrSchedule("linear", total=100, warmup=0, min_ratio=0.1)
    assert lin(0) == 1.0 and lin(99) == pytest.approx(0.1)
    assert [lin(s) - lin(s + 1) for s in range(98)] == pytest.approx([0.9 / 99] * 98)
    flat = LrSchedule("constant", total=100, warmup=0, min_ratio=0.05)
    assert {flat(s) for s in range(100)} == {1.0}


def test_warmup_share_gives_at_least_one_step():
    from types import SimpleNamespace

    from llm2ctr.ctr.schedule import LrSchedule

    cfg = SimpleNamespace(lr_schedule="cosine", warmup_share=0.001, min_lr_ratio=0.05)
    assert LrSchedule.from_config(cfg, 50).warmup == 1
    assert LrSchedule.from_config(SimpleNamespace(**{**vars(cfg), "warmup_share": 0.0}), 50).warmup == 0


def test_optimizer_follows_the_schedule_in_a_real_run(ctr_config, tmp_path):
    from llm2ctr.ctr.schedule import LrSchedule

    summary, _, p, cfg = _run(ctr_config, tmp_path, "lr", "ctr.max_steps=40", "ctr.warmup_share=0.1",
                              "ctr.min_lr_ratio=0.05", valid=False)
    assert p.reader("train").steps_per_epoch(cfg.ctr.batch_size) < 40  # the schedule spans epochs
    lrs = [r["lr"] for r in _log(tmp_path)]
    assert len(lrs) == 40 and summary["lr_schedule"] == "cosine"
    peak = cfg.ctr.lr
    assert lrs[:5] == pytest.approx([0, peak / 4, peak / 2, 3 * peak / 4, peak])  # 4 warm-up steps
    assert all(a > b for a, b in zip(lrs[4:], lrs[5:], strict=False))
    assert lrs[-1] == pytest.approx(0.05 * peak)
    sched = LrSchedule.from_config(cfg.ctr, 40)
    assert lrs == pytest.approx([peak * sched(s) for s in range(40)])
    # no validation reader: every epoch runs, nothing to stop on
    assert summary["best_epoch"] is None and summary["valid_losses"] == [] and not summary["stopped_early"]
    assert not (tmp_path / "best.safetensors").exists()


def test_without_validation_every_epoch_runs(ctr_config, tmp_path):
    summary, _, p, cfg = _run(ctr_config, tmp_path, "lr", "ctr.epochs=2", "ctr.lr_schedule=constant",
                              "ctr.warmup_share=0", valid=False)
    assert summary["epochs_run"] == 2 and summary["steps"] == 2 * p.reader("train").steps_per_epoch(cfg.ctr.batch_size)
    assert {r["lr"] for r in _log(tmp_path)} == {cfg.ctr.lr}  # constant without warm-up: flat


def test_early_stopping_when_the_validation_loss_cannot_improve(ctr_config, tmp_path):
    # lr 1e-8: the loss moves far less than min_delta, so epoch 1 is already "no improvement"
    summary, _, _, _ = _run(ctr_config, tmp_path, "lr", "ctr.epochs=6", "ctr.lr=1e-8",
                            "ctr.early_stopping_patience=1")
    assert summary["stopped_early"] and summary["epochs_run"] == 2 < 6
    assert len(summary["valid_losses"]) == 2
    valid_lines = [r for r in _log(tmp_path) if r.get("event") == "valid"]
    assert [r["epoch"] for r in valid_lines] == [0, 1]
    assert [r["valid_loss"] for r in valid_lines] == summary["valid_losses"]
    assert valid_lines[-1]["stopped"] and valid_lines[0]["global_step"] * 2 == valid_lines[1]["global_step"]


def test_early_stopping_restores_the_best_epoch(ctr_config, tmp_path):
    from llm2ctr.ctr.trainer import state_tensors, valid_batch_size, valid_loss

    # a large lr overfits the small world within a few epochs; min_delta 0 makes the stopping
    # epoch strictly worse than the best, so the best weights are not the last ones
    summary, net, p, cfg = _run(ctr_config, tmp_path, "dnn", "ctr.epochs=8", "ctr.lr=1e-2",
                                "ctr.early_stopping_patience=1", "ctr.early_stopping_min_delta=0")
    losses = summary["valid_losses"]
    assert summary["stopped_early"] and summary["epochs_run"] == len(losses) < 8, losses
    assert summary["best_epoch"] == losses.index(min(losses)) == summary["epochs_run"] - 2
    assert summary["best_valid_loss"] == min(losses)
    best = load_file(str(tmp_path / "best.safetensors"))
    got = state_tensors(net)
    assert best.keys() == got.keys() and all(torch.equal(best[k], got[k]) for k in best)
    final = load_file(str(tmp_path / "model.safetensors"))
    assert all(torch.equal(final[k], got[k]) for k in final)
    last = load_file(str(tmp_path / "checkpoint" / "model.safetensors"))  # the last epoch's weights
    assert any(not torch.equal(last[k], got[k]) for k in last)
    assert valid_loss(net, p.reader("valid"), valid_batch_size(cfg.ctr)) == summary["best_valid_loss"]


def test_bad_lr_schedule_is_refused_naming_the_key(ctr_config, tmp_path):
    with pytest.raises(ValueError, match=r"ctr\.lr_schedule='step'.*cosine, linear, constant"):
        _run(ctr_config, tmp_path, "lr", "ctr.lr_schedule=step")


def test_finetuning_moves_the_stock_bert_encoder_at_the_scaled_rate(ctr_config, tmp_path):
    """PRECTR-V2 with the encoder in the loop: the student's BertModel weights move, in the encoder group."""
    from llm2ctr.ctr import jobs
    from llm2ctr.ctr.baselines import build_model, get_spec
    from llm2ctr.ctr.prepare import prepare, student_dir
    from llm2ctr.ctr.trainer import train
    from llm2ctr.student.artifact import load_encoder

    cfg = ctr_config("ctr.max_steps=3", "ctr.encoder_unfreeze_at=0.0")
    p = prepare(cfg)
    spec = get_spec("prectr_v2")
    torch.manual_seed(0)
    encoder, _ = load_encoder(student_dir(cfg))
    before = {k: v.clone() for k, v in encoder.bert.state_dict().items()}
    net = build_model(spec, jobs.TextContexts(cfg, p).get("distilled"), p.spec, cfg.ctr, encoder)
    opt = make_optimizer(net, 1e-3, 0.1)
    enc_group = next(g for g in opt.param_groups if g["name"] == "encoder")
    assert {id(t) for t in enc_group["params"]} == {id(t) for t in encoder.bert.parameters()}
    assert enc_group["lr"] == pytest.approx(1e-4)
    train(net, spec, p.reader("train"), cfg.ctr, tmp_path, progress=False)
    after = encoder.bert.state_dict()
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert any("encoder.layer.0.attention" in k for k in moved) and "embeddings.word_embeddings.weight" in moved
