"""llm2ctr/ctr/artifact.py describes what `ctr train` / `ctr eval` really write."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from llm2ctr.artifacts import ArtifactError, write_manifest
from llm2ctr.ctr import artifact as ctr_artifact
from llm2ctr.ctr import jobs
from llm2ctr.errors import MissingArtifactError


def test_the_layout_and_loaders_match_a_trained_model(world, ctr_config, tmp_path):
    work = tmp_path / "w"
    shutil.copytree(world, work, ignore=shutil.ignore_patterns("ctr"))  # own ctr/: the world is shared
    cfg = ctr_config("ctr.epochs=1", workdir=work)
    jobs.run_train(cfg, ["lr"], progress=False)
    jobs.run_eval(cfg)

    at = ctr_artifact.root(cfg)
    assert at == work / ctr_artifact.DIR and ctr_artifact.root(cfg, cfg.ctr.seed + 1) == work / "ctr" / "seeds" / f"seed_{cfg.ctr.seed + 1}"
    assert ctr_artifact.trained_models(at) == ["lr"]
    folder = ctr_artifact.model_dir(at, "lr")
    assert ctr_artifact.load_model_manifest(folder)["summary"]["steps"] > 0
    for name in (ctr_artifact.WEIGHTS_FILE, ctr_artifact.MODEL_FILE, ctr_artifact.TRAIN_LOG):
        assert (folder / name).is_file(), name
    assert (ctr_artifact.work_dir(at, "lr") / ctr_artifact.TRAIN_LOG).is_file()  # where a killed run resumes from
    n_test = json.loads((ctr_artifact.features_dir(cfg) / "manifest.json").read_text())["counts"]["test"]
    assert ctr_artifact.has_predictions(folder, "test") and ctr_artifact.load_logits(folder, "test").shape == (n_test,)
    assert "logit" in ctr_artifact.load_predictions(folder, "cf_test")
    p = ctr_artifact.calibrated_probability(folder, "test")
    assert ((p > 0) & (p < 1)).all() and ctr_artifact.temperature(folder) > 0
    assert np.allclose(p, 1 / (1 + np.exp(-ctr_artifact.load_logits(folder, "test") / ctr_artifact.temperature(folder))))
    assert (ctr_artifact.eval_dir(cfg) / ctr_artifact.RESULTS_FILE).is_file()

    with pytest.raises(MissingArtifactError, match="no predictions on 'nope'"):
        ctr_artifact.load_predictions(folder, "nope")
    other = tmp_path / "other"
    other.mkdir()
    write_manifest(other, kind="report", stage="x", config=None)
    with pytest.raises(ArtifactError, match="expected an artifact of kind 'ctr'"):
        ctr_artifact.load_model_manifest(other)
