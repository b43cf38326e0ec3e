"""A damaged ranker checkpoint is refused with a message naming it (not a bare library error)."""

from pathlib import Path

import pytest
import torch

from llm2ctr.artifacts import ArtifactError
from llm2ctr.ctr.trainer import _load_checkpoint, _save_checkpoint


def test_roundtrip_then_truncation_is_named(tmp_path: Path):
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.ones(2, 4)).sum().backward()
    opt.step()
    ckpt = tmp_path / "checkpoint"
    _save_checkpoint(ckpt, model, opt, {"step": 1})
    other = torch.nn.Linear(4, 1)
    assert _load_checkpoint(ckpt, other, torch.optim.Adam(other.parameters(), lr=1e-3)) == {"step": 1}
    assert torch.equal(other.weight, model.weight)

    (ckpt / "optimizer.pt").write_bytes((ckpt / "optimizer.pt").read_bytes()[:50])
    with pytest.raises(ArtifactError, match=rf"{ckpt}: ranker checkpoint is damaged or truncated"):
        _load_checkpoint(ckpt, other, torch.optim.Adam(other.parameters(), lr=1e-3))
