"""The ranker report: markdown tables, JSON and PNG plots of every model x eval set x segment.

``results`` is ``{model: {eval_set: {segment: metrics}}}`` with ``metrics`` as returned by
:func:`llm2ctr.ctr.metrics.evaluate`; eval sets are "exposed" (the logged impressions)
and "counterfactual" (all candidates, where the debias module matters), segments "all",
"cold_start" and "active". The whole report directory is written atomically with a manifest of
kind "report", so a reader never sees a half-written report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from llm2ctr.artifacts import (
    atomic_dir,
    atomic_write_json,
    atomic_write_text,
    package_version,
    write_manifest,
)
from llm2ctr.ctr.calibration import calibration_curve

__all__ = ["METRIC_COLUMNS", "markdown_table", "write_report"]

EVAL_SET_ORDER = ("exposed", "counterfactual")
SEGMENT_ORDER = ("all", "cold_start", "active")
# (key in the metrics dict, column header, which value is best: "max", "min", a target, or None)
METRIC_COLUMNS: list[tuple[str, str, str | float | None]] = [
    ("auc", "AUC", "max"),
    ("gauc", "GAUC", "max"),
    ("logloss", "LogLoss", "min"),
    ("weighted_logloss", "wLogLoss", "min"),
    ("ap", "AP", "max"),
    ("pcoc", "PCOC", 1.0),
    ("pcoc_dev", "\\|PCOC-1\\|", "min"),
]
DELTA_METRICS = (("auc", "ΔAUC"), ("gauc", "ΔGAUC"), ("pcoc_dev", "Δ\\|PCOC-1\\|"))
COUNT_COLUMNS = [("n", "n"), ("n_pos", "clicks"), ("ctr", "CTR"), ("gauc_users", "GAUC users")]
CALIBRATION_BINS = 15


# ---------------------------------------------------------------- markdown


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _fmt(v: Any, digits: int = 4) -> str:
    if _is_missing(v):
        return "—"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.{digits}f}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def _best_rows(values: list[Any], rule: str | float) -> set[int]:
    """Indices of the best value(s) under ``rule`` (ties all win; missing values never do)."""
    scored = []
    for i, v in enumerate(values):
        if _is_missing(v) or not isinstance(v, (int, float, np.integer, np.floating)):
            continue
        v = float(v)
        s = v if rule == "max" else -v if rule == "min" else -abs(v - float(rule))
        scored.append((s, i))
    if len(scored) < 2:
        return set()
    top = max(s for s, _ in scored)
    return {i for s, i in scored if s == top}


def markdown_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str | tuple[str, str]],
    best: Mapping[str, str | float] | None = None,
    digits: int = 4,
) -> str:
    """A GitHub markdown table of ``rows`` (dicts) over ``columns`` (key or (key, header)).

    Floats get ``digits`` decimals, ints thousands separators, missing/nan an em dash; pipes in
    text are escaped. ``best`` maps a column key to "max", "min" or a target value (closest
    wins): the best cell(s) of that column are bold.
    """
    cols = [(c, c) if isinstance(c, str) else (c[0], c[1]) for c in columns]
    bold: dict[str, set[int]] = {}
    for key, rule in (best or {}).items():
        bold[key] = _best_rows([r.get(key) for r in rows], rule)
    lines = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for i, r in enumerate(rows):
        cells = []
        for key, _ in cols:
            cell = _fmt(r.get(key), digits)
            if i in bold.get(key, ()):
                cell = f"**{cell}**"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- structure helpers


def _ordered(names: Any, preferred: Sequence[str]) -> list[str]:
    names = list(dict.fromkeys(names))
    return [n for n in preferred if n in names] + [n for n in names if n not in preferred]


def _check_results(results: Mapping[str, Any]) -> None:
    if not isinstance(results, Mapping) or not results:
        raise ValueError("write_report: results must be a non-empty {model: {eval_set: {segment: metrics}}}")
    for model, sets in results.items():
        if not isinstance(sets, Mapping):
            raise ValueError(f"write_report: results[{model!r}] must map eval set -> segments, got {type(sets).__name__}")
        for es, segs in sets.items():
            if not isinstance(segs, Mapping):
                raise ValueError(
                    f"write_report: results[{model!r}][{es!r}] must map segment -> metrics, got {type(segs).__name__}"
                )
            for seg, m in segs.items():
                if not isinstance(m, Mapping) or "auc" not in m:
                    raise ValueError(
                        f"write_report: results[{model!r}][{es!r}][{seg!r}] must be a metrics dict "
                        "from metrics.evaluate (with an 'auc' key)"
                    )


def _json_safe(obj: Any) -> Any:
    """NaN/inf -> None and numpy -> python, so report.json is strict JSON."""
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    return obj


def _segment_rows(
    results: Mapping[str, Any], models: list[str], es: str, seg: str, baseline: str | None
) -> list[dict[str, Any]]:
    base = results.get(baseline, {}).get(es, {}).get(seg) if baseline else None
    rows = []
    for model in models:
        m = results[model].get(es, {}).get(seg)
        row: dict[str, Any] = {"model": f"{model} (baseline)" if model == baseline else model}
        if m is not None:
            row.update(m)
            for key, _ in DELTA_METRICS:
                if base is not None and model != baseline and not _is_missing(m.get(key)) \
                        and not _is_missing(base.get(key)):
                    row["delta_" + key] = f"{float(m[key]) - float(base[key]):+.4f}"
        rows.append(row)
    return rows


# ---------------------------------------------------------------- plots


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=120, bbox_inches="tight")


def _metric_bars(results: Mapping[str, Any], models: list[str], es: str, segs: list[str], path: Path) -> None:
    """AUC and GAUC per segment, one bar per model; the y axis is zoomed to show differences."""
    wide = len(models) * len(segs) > 12  # many bars: stack AUC over GAUC instead of side by side
    bar_width_in = 0.32 if wide else 0.3
    panel_w = max(4.5, bar_width_in * len(models) * len(segs) / 0.8 + 1.0)
    fig = Figure(figsize=(panel_w, 7.6) if wide else (2 * panel_w, 4.2))
    fig.subplots_adjust(hspace=0.3, wspace=0.25)
    width = 0.8 / max(1, len(models))
    x = np.arange(len(segs))
    cmap = [f"C{i % 10}" for i in range(len(models))]
    for k, (key, label) in enumerate((("auc", "AUC"), ("gauc", "GAUC"))):
        ax = fig.add_subplot(2, 1, k + 1) if wide else fig.add_subplot(1, 2, k + 1)
        vals_all = []
        for j, model in enumerate(models):
            vals = [results[model].get(es, {}).get(s, {}).get(key) for s in segs]
            vals = [np.nan if _is_missing(v) else float(v) for v in vals]
            vals_all += [v for v in vals if not math.isnan(v)]
            xs = x - 0.4 + width * (j + 0.5)
            bars = ax.bar(xs, vals, width * 0.92, label=model, color=cmap[j])
            for b, v in zip(bars, vals, strict=True):
                if not math.isnan(v):
                    ax.annotate(f"{v:.3f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom",
                                fontsize=7, rotation=90 if len(models) > 3 else 0,
                                xytext=(0, 2), textcoords="offset points")
        if vals_all:
            lo, hi = min(vals_all), max(vals_all)
            pad = max(0.01, 0.15 * (hi - lo))
            ax.set_ylim(max(0.0, lo - 3 * pad), min(1.0, hi + 2.5 * pad))
        ax.set_xticks(x, segs)
        ax.set_title(f"{label} ({es}; y axis zoomed)")
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        ax.set_ylabel(label)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(models), 4), frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    _save(fig, path)


def _calibration_plot(
    curves: Mapping[str, dict[str, Any]], hist: Mapping[str, np.ndarray], label: str, path: Path
) -> None:
    """Reliability diagram (equal-count bins, log axes for low CTRs) and predicted-p histogram."""
    fig = Figure(figsize=(11, 4.5))
    ax = fig.add_subplot(1, 2, 1)
    lo, hi = 1.0, 0.0
    for i, (model, c) in enumerate(curves.items()):
        ok = (c["count"] > 0) & (c["mean_p"] > 0) & (c["mean_y"] > 0)
        if not ok.any():
            continue
        ax.plot(c["mean_p"][ok], c["mean_y"][ok], "o-", ms=4, color=f"C{i % 10}",
                label=f"{model} (ECE {c['ece']:.4f})")
        lo = min(lo, c["mean_p"][ok].min(), c["mean_y"][ok].min())
        hi = max(hi, c["mean_p"][ok].max(), c["mean_y"][ok].max())
    if hi > lo:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="perfect calibration")
    ax.set_xlabel("mean predicted CTR (bin)")
    ax.set_ylabel("observed CTR (bin)")
    ax.set_title(f"Reliability, {label} ({CALIBRATION_BINS} equal-count bins)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax2 = fig.add_subplot(1, 2, 2)
    bins = np.linspace(0, 1, 51)
    for i, (model, p) in enumerate(hist.items()):
        ax2.hist(p, bins=bins, histtype="step", lw=1.5, color=f"C{i % 10}", label=model)
    ax2.set_yscale("log")
    ax2.set_xlabel("predicted click probability")
    ax2.set_ylabel("impressions")
    ax2.set_title(f"Distribution of predictions, {label}")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    _save(fig, path)


# ---------------------------------------------------------------- the report


def write_report(
    results: Mapping[str, Mapping[str, Mapping[str, Mapping[str, Any]]]],
    out_dir: str | Path,
    extra_sections: Mapping[str, str] | None = None,
    title: str = "llm2ctr ranker report",
    baseline: str | None = None,
    predictions: Mapping[str, tuple[Any, Any]] | None = None,
    predictions_label: str = "exposed / all",
    config: Any = None,
    inputs: Mapping[str, str | Path] | None = None,
) -> dict[str, Any]:
    """Write ``out_dir``/{report.md, report.json, metrics_<eval_set>.png, calibration.png, manifest.json}.

    ``baseline`` names the model the Δ columns compare against. ``predictions`` maps a model to
    (y, p) on one eval set, named by ``predictions_label``, for the calibration table and plot.
    ``extra_sections`` (title -> markdown) are appended verbatim, e.g. the ground-truth checks.
    ``config``/``inputs`` go to the manifest.
    The directory is replaced as a whole. Returns the paths written and the best model per
    eval set and segment by AUC.
    """
    _check_results(results)
    if baseline is not None and baseline not in results:
        raise ValueError(f"write_report: baseline {baseline!r} is not among the models {sorted(results)}")
    models = list(results)
    eval_sets = _ordered((es for m in results.values() for es in m), EVAL_SET_ORDER)
    out_dir = Path(out_dir)

    curves: dict[str, dict[str, Any]] = {}
    for model, (y, p) in (predictions or {}).items():
        curves[model] = calibration_curve(y, p, CALIBRATION_BINS, strategy="quantile")

    md = [f"# {title}", ""]
    md.append(f"llm2ctr {package_version()}. Models: {', '.join(models)}."
              + (f" Δ columns: difference to the baseline **{baseline}**." if baseline else ""))
    md += [
        "",
        "AUC: over all impressions. GAUC: per-user AUC weighted by the user's impressions; users with "
        "only clicks or only non-clicks are skipped (GAUC users = users counted). PCOC = mean predicted "
        "CTR / observed CTR (1 is calibrated). wLogLoss = 0.5·E[-log p | click] + 0.5·E[-log(1-p) | "
        "no click]. AP: average precision. Bold: best in the column. —: undefined (e.g. one class).",
        "",
    ]
    best: dict[str, dict[str, str | None]] = {}
    columns: list[tuple[str, str]] = [("model", "model")] + [(k, h) for k, h, _ in METRIC_COLUMNS]
    if baseline:
        columns += [("delta_" + k, h) for k, h in DELTA_METRICS]
    columns += COUNT_COLUMNS
    rules = {k: r for k, _, r in METRIC_COLUMNS if r is not None}
    plots: list[str] = []
    for es in eval_sets:
        segs = _ordered((s for m in results.values() for s in m.get(es, {})), SEGMENT_ORDER)
        md += [f"## Eval set: {es}", ""]
        best[es] = {}
        for seg in segs:
            rows = _segment_rows(results, models, es, seg, baseline)
            md += [f"### {es} / {seg}", "", markdown_table(rows, columns, best=rules)]
            winners = _best_rows([r.get("auc") for r in rows], "max")
            best[es][seg] = models[min(winners)] if winners else None
        png = f"metrics_{es}.png"
        plots.append(png)
        md += [f"![AUC and GAUC per segment, {es}]({png})", ""]
    if curves:
        md += ["## Calibration", "",
               f"On {predictions_label}. Reliability over {CALIBRATION_BINS} equal-count bins of predicted p; ECE = "
               "impression-weighted mean |predicted CTR - observed CTR| over the bins.", ""]
        md.append(markdown_table([{"model": m, "ece": c["ece"]} for m, c in curves.items()],
                                 [("model", "model"), ("ece", "ECE")], best={"ece": "min"}, digits=5))
        md += ["![Calibration](calibration.png)", ""]
        plots.append("calibration.png")
    for name, text in (extra_sections or {}).items():
        md += [f"## {name}", "", text.rstrip("\n"), ""]

    with atomic_dir(out_dir) as tmp:
        atomic_write_text(tmp / "report.md", "\n".join(md).rstrip("\n") + "\n")
        atomic_write_json(tmp / "report.json", _json_safe({
            "title": title,
            "baseline": baseline,
            "models": models,
            "results": results,
            "best_auc": best,
            "calibration": curves,
            "extra_sections": list(extra_sections or {}),
            "plots": plots,
        }))
        for es in eval_sets:
            segs = _ordered((s for m in results.values() for s in m.get(es, {})), SEGMENT_ORDER)
            _metric_bars(results, models, es, segs, tmp / f"metrics_{es}.png")
        if curves:
            hist = {m: np.asarray(p, dtype=np.float64) for m, (_, p) in (predictions or {}).items()}
            _calibration_plot(curves, hist, predictions_label, tmp / "calibration.png")
        write_manifest(tmp, kind="report", stage="ctr", config=config, inputs=dict(inputs or {}),
                       counts={"models": len(models), "eval_sets": len(eval_sets)},
                       title=title, baseline=baseline)
    files = ["report.md", "report.json", *plots, "manifest.json"]
    return {"out_dir": str(out_dir), "files": [str(out_dir / f) for f in files], "best_auc": best}
