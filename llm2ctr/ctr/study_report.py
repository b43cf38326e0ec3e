"""The study as markdown tables and one PNG (model AUCs with error bars, check effects with intervals)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from llm2ctr.artifacts import atomic_write_text

MODEL_COLUMNS = (
    ("exposed", "auc", "AUC exposed"), ("exposed", "gauc", "GAUC exposed"),
    ("counterfactual", "auc", "AUC all-cand."), ("exposed", "auc_truth", "AUC vs truth exposed"),
    ("counterfactual", "auc_truth", "AUC vs truth all-cand."), ("exposed", "auc_cold_truth", "cold-start AUC vs truth"),
    ("counterfactual", "auc_tail_truth", "long-tail AUC vs truth all-cand."),
)


def _pm(row: dict, key: str, eval_set: str | None = None) -> str:
    row = row.get(eval_set, {}) if eval_set else row
    mean, sd = row.get(f"{key}_mean"), row.get(f"{key}_sd")
    if mean is None or not math.isfinite(mean):
        return "—"
    return f"{mean:.4f}" + (f" ± {sd:.4f}" if sd is not None and math.isfinite(sd) else "")


def _num(v, digits: int = 4, sign: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def models_markdown(result: dict) -> str:
    """Per-model mean ± sd over seeds (labels, and truth where the simulator wrote it)."""
    head = ["model", "role"] + [h for _, _, h in MODEL_COLUMNS] + ["valid AUC", "> best feature"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in result["models"].items():
        cells = [name, row.get("role", "")] + [_pm(row, m, s) for s, m, _ in MODEL_COLUMNS]
        beats = row.get("beats_best_feature")
        cells += [_pm(row, "valid_auc"), "—" if beats is None else ("yes" if beats else "**NO**")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def checks_markdown(result: dict) -> str:
    """One line per claim: effect [95% CI], oracle gain, control, verdict."""
    head = ["check", "metric", "A − B", "effect [95% CI]", "oracle gain", "control (A − B) [95% CI]", "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in result["checks"]:
        eff = f"{_num(c['effect'], sign=True)} [{_num(c['ci_low'], sign=True)}, {_num(c['ci_high'], sign=True)}]"
        ctrl = c.get("control")
        ctrl_s = "—"
        if ctrl and "effect" in ctrl:
            ctrl_s = (f"{' − '.join(ctrl['models'])}: {_num(ctrl['effect'], sign=True)} "
                      f"[{_num(ctrl['ci_low'], sign=True)}, {_num(ctrl['ci_high'], sign=True)}]")
        lines.append(f"| {c['name']} | {c['metric']} | {' − '.join(c['models'])} | {eff} | "
                     f"{_num(c['oracle_gain'])} | {ctrl_s} | **{c['verdict']}** |")
    return "\n".join(lines) + "\n"


def skipped_markdown(result: dict) -> list[str]:
    """The claims not computed here, each with its reason (lines for the study's markdown)."""
    skipped = result.get("skipped_checks") or []
    if not skipped:
        return []
    return ["Not computed here: " + "; ".join(f"{c['name']} ({c['reason']})" for c in skipped) + ".", ""]


def study_markdown(result: dict) -> str:
    n_seeds = len(result["seeds"])
    md = [
        "# Ranker study", "",
        f"{len(result['models'])} models × {n_seeds} seeds ({', '.join(map(str, result['seeds']))}); "
        f"{result['n_boot']} bootstrap replicates over test requests, paired across models and pooled across "
        f"seeds (seeds resampled too). Wall time {result['seconds']:.0f} s (training {result['train_seconds']:.0f} s).",
        "", "## Checks", "",
        "Effect = metric(A) − metric(B), mean over seeds. Metric `*_truth`: soft-label AUC against the simulator's "
        "true click probability (no label noise). Oracle gain: the best gain any model could get from what the "
        "mechanism targets (from the ground truth; docs/ranker.md). The control is a model given the targeted "
        "information directly: its interval excluding 0 shows the world can show the effect. Verdict: *not "
        "testable* when the oracle gain is below 2 sd of the noise or the control shows no gain, *holds* when "
        "the 95% interval excludes 0, else *falsified*.",
        "", checks_markdown(result),
        *skipped_markdown(result),
        "## Models (mean ± sd over seeds)", "",
        f"Best single input feature on validation: {result['best_single_feature']['name']} "
        f"(AUC {_num(result['best_single_feature']['valid_auc'])}); every model must beat it.", "",
        models_markdown(result),
    ]
    if result.get("warnings"):
        md += ["## Warnings", ""] + [f"- **{w}**" for w in result["warnings"]] + [""]
    md += ["![Study](study.png)", ""]
    return "\n".join(md)


def study_figure(result: dict, path: Path) -> None:
    """Top: AUC per model and eval set (mean ± sd). Bottom: each check's effect with its 95% CI."""
    fig = Figure(figsize=(11, 10))
    fig.subplots_adjust(hspace=0.55)
    ax = fig.add_subplot(2, 1, 1)
    models = list(result["models"])
    x = np.arange(len(models))
    for k, (label, metric) in enumerate((("exposed", "auc"), ("counterfactual", "auc"))):
        mean = [result["models"][m].get(label, {}).get(f"{metric}_mean", np.nan) for m in models]
        sd = [result["models"][m].get(label, {}).get(f"{metric}_sd", np.nan) for m in models]
        ax.errorbar(x + (k - 0.5) * 0.25, mean, yerr=np.nan_to_num(sd), fmt="o", capsize=3, label=f"{metric} {label}")
    ax.set_xticks(x, models, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("AUC (labels)")
    ax.set_title("Models: mean ± sd over seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax2 = fig.add_subplot(2, 1, 2)
    checks = result["checks"]
    y = np.arange(len(checks))
    for i, c in enumerate(checks):
        ax2.errorbar([c["effect"]], [i], xerr=[[c["effect"] - c["ci_low"]], [c["ci_high"] - c["effect"]]],
                     fmt="o", capsize=3, color="C0")
        if math.isfinite(c.get("oracle_gain", float("nan"))):
            ax2.plot([c["oracle_gain"]], [i], "k|", ms=12)
    ax2.axvline(0.0, color="grey", lw=1)
    ax2.set_yticks(y, [f"{c['name']} ({c['verdict']})" for c in checks], fontsize=8)
    ax2.set_xlabel("effect A − B (95% CI); | = oracle gain")
    ax2.set_title("Checks")
    ax2.grid(alpha=0.3)
    FigureCanvasAgg(fig)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(path)


def write_study(result: dict, out: Path) -> list[str]:
    """study.md and study.png in ``out`` (each atomically); returns their paths."""
    atomic_write_text(out / "study.md", study_markdown(result))
    study_figure(result, out / "study.png")
    return [str(out / "study.md"), str(out / "study.png")]
