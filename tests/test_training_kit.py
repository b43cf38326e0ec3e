"""The training kit: a checkpoint round trip is exact, an interrupted save keeps the old one, logs cut right."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from llm2ctr import training
from llm2ctr.artifacts import ArtifactError
from llm2ctr.training import (
    CheckpointFiles,
    load_checkpoint,
    load_weights,
    read_position,
    save_checkpoint,
    save_weights,
    truncate_log,
)


def _setup(seed: int):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
    return model, opt, sched


def _step(model, opt, sched) -> None:
    x = torch.randn(16, 4)  # draws from the torch RNG, as does dropout
    model(x).square().mean().backward()
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)


def _draws() -> tuple:
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]


def test_round_trip_restores_weights_optimizer_scheduler_rng_and_position(tmp_path: Path):
    model, opt, sched = _setup(0)
    for _ in range(3):
        _step(model, opt, sched)
    np.random.seed(1)
    random.seed(2)
    position = {"epoch": 1, "step": 3, "losses": [0.1, 1 / 3], "best": None}
    save_checkpoint(tmp_path / "ck", model, opt, sched, position=position, rng=("torch", "numpy", "python"))
    expected_draws = _draws()
    for _ in range(2):  # the uninterrupted run goes on
        _step(model, opt, sched)

    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    other, opt2, sched2 = _setup(99)  # different initial weights: they must come from the checkpoint
    assert read_position(tmp_path / "ck") == position
    assert load_checkpoint(tmp_path / "ck", other, opt2, sched2) == position
    assert _draws() == expected_draws  # all three RNG streams continue where the checkpoint was
    assert sched2.state_dict()["last_epoch"] == 3
    # rewind the RNG once more and redo the two steps: bit-identical to the uninterrupted run
    load_checkpoint(tmp_path / "ck", other, opt2, sched2)
    _draws()
    for _ in range(2):
        _step(other, opt2, sched2)
    for (k, a), b in zip(model.state_dict().items(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert opt.state_dict()["state"][0]["exp_avg"].equal(opt2.state_dict()["state"][0]["exp_avg"])


def test_no_rng_saved_unless_asked(tmp_path: Path):
    model, opt, _ = _setup(0)
    save_checkpoint(tmp_path / "ck", model, opt, position={})
    state = torch.load(tmp_path / "ck" / "trainer_state.pt", weights_only=True)
    assert set(state) == {"optimizer"}
    with pytest.raises(ValueError, match="unknown RNG"):
        save_checkpoint(tmp_path / "ck2", model, opt, position={}, rng=("tensorflow",))


def test_weights_as_a_mapping_with_a_loader_and_custom_file_names(tmp_path: Path):
    model, opt, _ = _setup(0)
    files = CheckpointFiles(state="optimizer.pt", position="state.json")
    weights = {f"head.{k}": v for k, v in model.state_dict().items()}
    save_checkpoint(tmp_path / "ck", weights, opt, position={"step": 7}, files=files)
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["model.safetensors", "optimizer.pt", "state.json"]
    got = {}
    other, opt2, _ = _setup(1)
    assert load_checkpoint(tmp_path / "ck", got.update, opt2, files=files) == {"step": 7}
    assert got.keys() == weights.keys() and all(torch.equal(got[k], weights[k]) for k in got)
    assert read_position(tmp_path / "ck") is None  # default names: no such checkpoint


def test_interrupted_save_leaves_the_previous_checkpoint(tmp_path: Path, monkeypatch):
    model, opt, sched = _setup(0)
    ck = tmp_path / "ck"
    save_checkpoint(ck, model, opt, sched, position={"step": 1})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _step(model, opt, sched)

    def killed(*a, **k):  # the weights and optimizer are written, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "atomic_write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(ck, model, opt, sched, position={"step": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # no half-written folder left
    other, opt2, sched2 = _setup(5)
    assert load_checkpoint(ck, other, opt2, sched2) == {"step": 1}
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())


def test_damaged_checkpoint_is_named(tmp_path: Path):
    model, opt, _ = _setup(0)
    ck = tmp_path / "ck"
    save_checkpoint(ck, model, opt, position={"step": 1})
    weights = ck / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:40])
    with pytest.raises(ArtifactError, match=rf"{ck}: toy checkpoint is damaged or truncated"):
        load_checkpoint(ck, model, opt, what="toy checkpoint")


def test_legacy_bare_optimizer_state_loads(tmp_path: Path):
    model, opt, sched = _setup(0)
    _step(model, opt, sched)
    files = CheckpointFiles(state="optimizer.pt", position="state.json")
    save_checkpoint(tmp_path / "ck", model, opt, position={"step": 1}, files=files)
    torch.save(opt.state_dict(), tmp_path / "ck" / "optimizer.pt")  # the ranker's format before the kit
    other, opt2, _ = _setup(1)
    load_checkpoint(tmp_path / "ck", other, opt2, files=files)
    assert opt2.state_dict()["state"][0]["exp_avg"].equal(opt.state_dict()["state"][0]["exp_avg"])


def test_best_weights_check_their_metadata(tmp_path: Path):
    model, *_ = _setup(0)
    path = tmp_path / "best.safetensors"
    save_weights(path, model, {"epoch": "2"})
    other, *_ = _setup(1)
    assert load_weights(path, other, expect={"epoch": "2"}) == {"epoch": "2"}
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values(), strict=True))
    with pytest.raises(ArtifactError, match=r"best\.safetensors: best weights has epoch 2, but 3 was expected"):
        load_weights(path, other, what="best weights", expect={"epoch": "3"})
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(ArtifactError, match="damaged or truncated"):
        load_weights(path, other)


def test_truncate_log_keeps_exactly_the_lines_up_to_the_checkpoint(tmp_path: Path):
    log = tmp_path / "train_log.jsonl"
    assert truncate_log(log, lambda r: True) == 0 and not log.exists()
    recs = [{"global_step": 1, "epoch": 0}, {"global_step": 2, "epoch": 0},
            {"event": "valid", "epoch": 0, "global_step": 2}, {"global_step": 3, "epoch": 1},
            {"global_step": 4, "epoch": 1}, {"event": "valid", "epoch": 1, "global_step": 4},
            {"global_step": 5, "epoch": 2}]
    log.write_text("".join(json.dumps(r) + "\n" for r in recs) + '{"global_step": 6, "ep')  # torn by a kill
    # the ranker's rule for a checkpoint at global step 3 that recorded one validation
    dropped = truncate_log(log, lambda r: r["epoch"] < 1 if r.get("event") == "valid" else r["global_step"] <= 3)
    assert dropped == 4  # steps 4 and 5, the second validation, the torn line
    assert [json.loads(x) for x in log.read_text().splitlines()] == recs[:4]
    assert log.read_text().endswith("}\n")
    log.write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(ArtifactError, match="line 2 is not JSON"):
        truncate_log(log, lambda r: True)
