"""The report's checks: every model against its best single input, and the study's verdicts.

One seed's difference between two models is noise here (DESIGN.md section 8), so the PRECTR-V2
claims (cold-start mining, debias, gate, encoder) are settled by ``llm2ctr ctr study`` with seeds,
intervals, oracle gains and positive controls; the report shows the study's verdicts when a study
exists and says how to get them when not. What one seed *can* show is a model that has not learned:
a model whose validation AUC does not beat its best single input feature gets a loud warning and a
failed verdict.
"""

from __future__ import annotations

import json
import logging

import numpy as np

from llm2ctr.ctr import artifact as ctr_artifact
from llm2ctr.ctr.metrics import auc

log = logging.getLogger(__name__)


def floor_checks(cfg, prepared, models: list[str]) -> dict:
    """Per model: validation AUC vs the best single feature's ("holds" when above it)."""
    from llm2ctr.ctr.sanity import best_single_feature

    if not prepared.has("valid") or prepared.counts.get("valid", 0) == 0:
        return {}
    valid = prepared.reader("valid")
    name, floor = best_single_feature(valid, prepared.spec, prepared.pairs)
    y = valid.column("label")
    out = {}
    for m in models:
        folder = ctr_artifact.model_dir(ctr_artifact.root(cfg), m)
        if not ctr_artifact.has_predictions(folder, "valid") or not np.isfinite(floor):
            continue
        value = auc(y, ctr_artifact.load_logits(folder, "valid"))
        ok = bool(value > floor)
        out[m] = {"valid_auc": value, "best_feature": name, "best_feature_auc": floor,
                  "status": "holds" if ok else "falsified"}
        if not ok:
            log.warning("%s: validation AUC %.4f does not beat the best single feature %s (%.4f): it has not "
                        "learned (too few steps? lr?)", m, value, name, floor)
    return out


def verify(cfg, prepared, models: list[str]) -> tuple[dict, str]:
    """The checks as a dict and a markdown section for the report."""
    floors = floor_checks(cfg, prepared, models)
    lines = ["### Every model beats its best single input feature (validation AUC)", ""]
    bad = [m for m, c in floors.items() if c["status"] != "holds"]
    if bad:
        lines += [f"> **WARNING: {', '.join(bad)} did not beat the best single feature: these models have not "
                  "learned; their numbers below mean nothing.**", ""]
    lines += ["| model | valid AUC | best single feature | its AUC | verdict |", "|---|---:|---|---:|---|"]
    lines += [f"| {m} | {c['valid_auc']:.4f} | {c['best_feature']} | {c['best_feature_auc']:.4f} | **{c['status']}** |"
              for m, c in floors.items()]
    study_path = ctr_artifact.study_dir(cfg) / ctr_artifact.STUDY_JSON
    lines += ["", "### PRECTR-V2 claims", ""]
    study_checks = {}
    if study_path.is_file():
        study = json.loads(study_path.read_text())
        study_checks = {c["name"]: {k: c.get(k) for k in ("verdict", "metric", "models", "effect", "ci_low",
                                                             "ci_high", "oracle_gain")} for c in study["checks"]}
        lines += [f"From `llm2ctr ctr study` ({len(study['seeds'])} seeds; {study_path}):", "",
                  "| check | A − B | effect [95% CI] | oracle gain | verdict |", "|---|---|---|---:|---|"]
        for n, c in study_checks.items():
            lines.append(f"| {n} | {' − '.join(c['models'])} | {c['effect']:+.4f} [{c['ci_low']:+.4f}, "
                         f"{c['ci_high']:+.4f}] | {c['oracle_gain']:.4f} | **{c['verdict']}** |")
    else:
        lines.append("Not settled here: one seed's difference is noise. Run `llm2ctr ctr study` (the pipeline's "
                     "`ctr_study` stage does) for each claim's effect over seeds with a 95% interval, its best "
                     "achievable gain and its positive control.")
    return {"best_single_feature": floors, "study": study_checks}, "\n".join(lines)
