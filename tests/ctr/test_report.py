"""The report writes markdown, strict JSON, real PNGs and a manifest, atomically."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.image import imread

from llm2ctr.artifacts import read_manifest
from llm2ctr.ctr import report as report_mod
from llm2ctr.ctr.metrics import evaluate_segments
from llm2ctr.ctr.report import markdown_table, write_report

MODELS = {"wide_deep": 1.2, "din": 0.8, "prectr_v2": 0.4}  # model -> noise (less noise: better)
SEGMENTS = ("all", "cold_start", "active")


def _results(n: int = 3000):
    rng = np.random.default_rng(0)
    users = rng.integers(0, 200, n)
    z = rng.normal(-2.0, 1.0, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int8)
    cold = users < 50
    masks = {"all": np.ones(n, bool), "cold_start": cold, "active": ~cold}
    results, preds = {}, {}
    for model, noise in MODELS.items():
        p = 1 / (1 + np.exp(-(z + rng.normal(0, noise, n))))
        results[model] = {
            "exposed": evaluate_segments(y, p, users, masks),
            "counterfactual": evaluate_segments(y[::2], p[::2], users[::2], {k: v[::2] for k, v in masks.items()}),
        }
        preds[model] = (y, p)
    # one model lacks a segment: the table shows a dash, nothing crashes
    del results["din"]["counterfactual"]["active"]
    return results, preds


def _no_nan(const):
    raise ValueError(f"report.json contains {const}")


def test_write_report_files_tables_plots_and_manifest(tmp_path):
    results, preds = _results()
    out = tmp_path / "report"
    extra = {"Ground-truth checks": "| check | value |\n|---|---|\n| sensitivity corr | 0.91 |"}
    summary = write_report(results, out, extra_sections=extra, baseline="wide_deep", predictions=preds)

    md = (out / "report.md").read_text()
    for model in MODELS:
        assert model in md
    for es in ("exposed", "counterfactual"):
        for seg in SEGMENTS:
            assert f"### {es} / {seg}" in md
    assert "wide_deep (baseline)" in md and "ΔAUC" in md
    assert extra["Ground-truth checks"] in md  # appended verbatim
    # prectr_v2 (least noise) wins AUC on every eval set and segment, in bold and in the summary
    assert summary["best_auc"]["exposed"] == {s: "prectr_v2" for s in SEGMENTS}
    v2_all = results["prectr_v2"]["exposed"]["all"]
    assert f"**{v2_all['auc']:.4f}**" in md
    base = results["wide_deep"]["exposed"]["all"]["auc"]
    assert f"{v2_all['auc'] - base:+.4f}" in md

    data = json.loads((out / "report.json").read_text(), parse_constant=_no_nan)
    assert set(data["results"]) == set(MODELS)
    assert data["results"]["din"]["exposed"]["cold_start"]["auc"] == pytest.approx(
        results["din"]["exposed"]["cold_start"]["auc"])
    assert set(data["calibration"]) == set(MODELS)

    for png in ("metrics_exposed.png", "metrics_counterfactual.png", "calibration.png"):
        img = imread(out / png)
        assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 400
        assert img[..., :3].std() > 0.05  # not a blank canvas
    manifest = read_manifest(out, kind="report")
    assert manifest["counts"]["models"] == 3 and manifest["baseline"] == "wide_deep"
    assert {p.name for p in out.iterdir()} == {"report.md", "report.json", "metrics_exposed.png",
                                              "metrics_counterfactual.png", "calibration.png", "manifest.json"}


def test_report_replaces_old_one_atomically(tmp_path, monkeypatch):
    results, _ = _results(600)
    out = tmp_path / "report"
    write_report(results, out, title="first")

    def crash(*args, **kwargs):
        raise RuntimeError("killed while plotting")

    monkeypatch.setattr(report_mod, "_metric_bars", crash)
    with pytest.raises(RuntimeError, match="killed"):
        write_report(results, out, title="second")
    assert (out / "report.md").read_text().startswith("# first")  # old report intact
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no temp dir left
    monkeypatch.undo()
    write_report(results, out, title="third")
    assert (out / "report.md").read_text().startswith("# third")
    assert not (out / "calibration.png").exists()  # no predictions: no calibration plot


def test_report_input_errors(tmp_path):
    results, _ = _results(600)
    with pytest.raises(ValueError, match="baseline 'lr' is not among the models"):
        write_report(results, tmp_path / "r", baseline="lr")
    with pytest.raises(ValueError, match=r"results\['m'\]\['exposed'\]\['all'\] must be a metrics dict"):
        write_report({"m": {"exposed": {"all": 0.7}}}, tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_markdown_table_bold_missing_and_escaping():
    rows = [
        {"model": "a|b", "auc": 0.7, "loss": 0.30, "pcoc": 1.10, "n": 1234},
        {"model": "c", "auc": 0.8, "loss": 0.30, "pcoc": 0.95, "n": 99},
        {"model": "d", "auc": float("nan"), "loss": 0.40, "pcoc": None},
    ]
    md = markdown_table(rows, ["model", ("auc", "AUC"), "loss", "pcoc", "n"],
                        best={"auc": "max", "loss": "min", "pcoc": 1.0})
    lines = md.strip().split("\n")
    assert lines[0] == "| model | AUC | loss | pcoc | n |"
    assert lines[2] == "| a\\|b | 0.7000 | **0.3000** | 1.1000 | 1,234 |"
    assert lines[3] == "| c | **0.8000** | **0.3000** | **0.9500** | 99 |"  # ties both bold
    assert lines[4] == "| d | — | 0.4000 | — | — |"
