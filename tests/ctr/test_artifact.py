"""llm2ctr/ctr_finetune/artifact.py describes what `ctr train` / `ctr eval` really write."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from llm2ctr.artifacts import ArtifactError, write_manifest
from llm2ctr.ctr_finetune import artifact as ranker
from llm2ctr.ctr_finetune import jobs
from llm2ctr.errors import MissingArtifactError


def test_the_layout_and_loaders_match_a_trained_model(world, ctr_config, tmp_path):
    work = tmp_path / "w"
    shutil.copytree(world, work, ignore=shutil.ignore_patterns("ctr"))  # own ctr/: the world is shared
    cfg = ctr_config("ctr.epochs=1", workdir=work)
    jobs.run_train(cfg, ["lr"], progress=False)
    jobs.run_eval(cfg)

    at = ranker.root(cfg)
    assert at == work / ranker.DIR and ranker.root(cfg, cfg.ctr.seed + 1) == work / "ctr" / "seeds" / f"seed_{cfg.ctr.seed + 1}"
    assert ranker.trained_models(at) == ["lr"]
    folder = ranker.model_dir(at, "lr")
    assert ranker.load_model_manifest(folder)["summary"]["steps"] > 0
    for name in (ranker.WEIGHTS_FILE, ranker.MODEL_FILE, ranker.TRAIN_LOG):
        assert (folder / name).is_file(), name
    assert (ranker.work_dir(at, "lr") / ranker.TRAIN_LOG).is_file()  # where a killed run resumes from
    n_test = json.loads((ranker.features_dir(cfg) / "manifest.json").read_text())["counts"]["test"]
    assert ranker.has_predictions(folder, "test") and ranker.load_logits(folder, "test").shape == (n_test,)
    assert "logit" in ranker.load_predictions(folder, "cf_test")
    p = ranker.calibrated_probability(folder, "test")
    assert ((p > 0) & (p < 1)).all() and ranker.temperature(folder) > 0
    assert np.allclose(p, 1 / (1 + np.exp(-ranker.load_logits(folder, "test") / ranker.temperature(folder))))
    assert (ranker.eval_dir(cfg) / ranker.RESULTS_FILE).is_file()

    with pytest.raises(MissingArtifactError, match="no predictions on 'nope'"):
        ranker.load_predictions(folder, "nope")
    other = tmp_path / "other"
    other.mkdir()
    write_manifest(other, kind="report", stage="x", config=None)
    with pytest.raises(ArtifactError, match="expected an artifact of kind 'ranker'"):
        ranker.load_model_manifest(other)
