"""The ranker stage's artifacts under ``{workdir}/ctr``, and the door other code reads them through.

Layout::

    ctr/features/<set>.arrow   the ranker's inputs (prepare.py): train, valid, test (exposed),
                               cf_test (all candidates), ...; manifest kind "ctr"
    ctr/work/<model>/          checkpoints + train_log.jsonl of a run in progress (a killed run resumes)
    ctr/models/<model>/        one trained model, manifest kind "ctr" (summary in the manifest):
                               model.safetensors, model.json (config, feature spec, temperature),
                               pred_<set>.npz ("logit" per row of features/<set>.arrow), train_log.jsonl
    ctr/eval/results.json      metrics per model x eval set x segment
    ctr/report/                manifest kind "report": report.md, report.json, checks.json, *.png
    ctr/study/                 study.json, study.md, study.png: the seeded study
    ctr/seeds/seed_<s>/        the study's other seeds: models/ and work/ as under ctr/

A "root" is ``ctr/`` (the configured seed: what ``ctr train`` writes) or ``ctr/seeds/seed_<s>``;
:func:`root` gives it. Light on purpose (numpy is imported inside the loaders): pipeline.py reads
the names at import time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm2ctr.artifacts import read_manifest
from llm2ctr.errors import MissingArtifactError

if TYPE_CHECKING:
    import numpy as np

    from llm2ctr.config import Config

STAGE = "ctr"
KIND = "ctr"  # features/ and every models/<model>/
REPORT_KIND = "report"
DIR = "ctr"
# the folders relative to the workdir (how the pipeline names its inputs and outputs)
FEATURES, MODELS, EVAL, REPORT, STUDY = (f"{DIR}/{n}" for n in ("features", "models", "eval", "report", "study"))
WEIGHTS_FILE = "model.safetensors"
MODEL_FILE = "model.json"
TRAIN_LOG = "train_log.jsonl"
RESULTS_FILE = "results.json"  # in ctr/eval
REPORT_MD = "report.md"  # in ctr/report
STUDY_JSON, STUDY_MD, STUDY_PNG = "study.json", "study.md", "study.png"  # in ctr/study


# the evaluation sets: label -> features file (exposed test impressions; the simulator's all-candidates set)
EVAL_SETS = {"exposed": "test", "counterfactual": "cf_test"}


def pred_file(set_name: str) -> str:
    """``pred_<set>.npz``: a model's predictions on ``features/<set>.arrow``, row for row."""
    return f"pred_{set_name}.npz"


def root(cfg: Config, seed: int | None = None) -> Path:
    """``ctr/`` for the configured seed (or ``None``), ``ctr/seeds/seed_<s>`` for another seed."""
    if seed is None or seed == cfg.ctr.seed:
        return cfg.stage_dir(DIR)
    return cfg.stage_dir(DIR, "seeds", f"seed_{seed}")


def features_dir(cfg: Config) -> Path:
    return cfg.stage_dir(DIR, "features")


def eval_dir(cfg: Config) -> Path:
    return cfg.stage_dir(DIR, "eval")


def report_dir(cfg: Config) -> Path:
    return cfg.stage_dir(DIR, "report")


def study_dir(cfg: Config) -> Path:
    return cfg.stage_dir(DIR, "study")


def models_dir(at: Path) -> Path:
    """``<root>/models``; ``at`` is a root (see :func:`root`)."""
    return Path(at) / "models"


def model_dir(at: Path, name: str) -> Path:
    return models_dir(at) / name


def work_dir(at: Path, name: str) -> Path:
    return Path(at) / "work" / name


def trained_models(at: Path) -> list[str]:
    """Names of the finished models under ``<root>/models`` (those with a manifest), sorted by name."""
    folder = models_dir(at)
    if not folder.is_dir():
        return []
    return [p.name for p in sorted(folder.iterdir()) if (p / "manifest.json").is_file()]


def load_model_manifest(folder: str | Path) -> dict[str, Any]:
    """A trained model folder's manifest (kind "ctr" checked); ``["summary"]`` holds its training summary."""
    return read_manifest(folder, KIND)


def temperature(folder: str | Path) -> float:
    """The calibration temperature fitted on the validation set (1.0 when the model was not calibrated)."""
    path = Path(folder) / MODEL_FILE
    if not path.is_file():
        raise MissingArtifactError(f"{path}: missing; {folder} is not a trained ranker (run `llm2ctr ctr train`)")
    return float(json.loads(path.read_text(encoding="utf-8")).get("temperature", 1.0))


def has_predictions(folder: str | Path, set_name: str) -> bool:
    return (Path(folder) / pred_file(set_name)).is_file()


def load_predictions(folder: str | Path, set_name: str) -> dict[str, np.ndarray]:
    """Every array a model saved for ``set_name`` (at least ``logit``), row for row with the features."""
    import numpy as np

    path = Path(folder) / pred_file(set_name)
    if not path.is_file():
        raise MissingArtifactError(f"{path}: no predictions on '{set_name}' (the features had no such set "
                                   "when the model was trained; re-run `llm2ctr ctr train`)")
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def load_logits(folder: str | Path, set_name: str) -> np.ndarray:
    """The raw logits (float64) on ``set_name``."""
    return load_predictions(folder, set_name)["logit"].astype("float64")


def calibrated_probability(folder: str | Path, set_name: str) -> np.ndarray:
    """sigmoid(logit / temperature): the probability the ranker's metrics and report use."""
    import numpy as np

    return 1.0 / (1.0 + np.exp(-load_logits(folder, set_name) / temperature(folder)))
