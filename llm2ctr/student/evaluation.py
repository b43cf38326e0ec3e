"""The distillation table: students, teacher probes and lexical baselines on one held-out split.

Every model is fitted on the training split and gets the same decision rule (class offsets tuned
on validation macro-F1, when ``student.decision_rule=tuned``), so rows differ only in what the
model knows. Test rows are reported together (``all``) and separately for queries ``seen`` in
training and queries never seen (``unseen``): a student can memorise the first, only the second
shows what it learned. Metrics come from scikit-learn, so they equal the reference by construction.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, classification_report, f1_score
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from llm2ctr.student.data import PairArrays
from llm2ctr.student.decision import tune_class_offsets
from llm2ctr.student.losses import variant_terms
from llm2ctr.student.modeling import LABELS as CLASS_NAMES
from llm2ctr.student.modeling import Student
from llm2ctr.student.teacher_head import fit_teacher_head

SPLITS = ("all", "seen", "unseen")


@torch.no_grad()
def student_outputs(model: Student, data: PairArrays, batch_size: int = 512) -> dict[str, np.ndarray]:
    """Pooled vectors, relevance logits and teacher-space projections for every row."""
    model.eval()
    pooled, logits, proj = [], [], []
    for s in tqdm(range(0, len(data), batch_size), desc="student outputs", leave=False, disable=len(data) < 20000):
        b = data.batch(np.arange(s, min(s + batch_size, len(data))))
        out = model(input_ids=b["input_ids"], token_type_ids=b["token_type_ids"], attention_mask=b["attention_mask"])
        pooled.append(out.pooled.float().numpy())
        logits.append(out.logits.float().numpy())
        proj.append(out.projection.float().numpy())
    d = model.config.hidden_size
    return {
        "pooled": np.concatenate(pooled) if pooled else np.zeros((0, d), np.float32),
        "logits": np.concatenate(logits) if logits else np.zeros((0, 4), np.float32),
        "projection": np.concatenate(proj) if proj else np.zeros((0, model.teacher_dim), np.float32),
    }


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Accuracy, macro-F1 and the per-class report over the 4 relevance levels (labels 0..3)."""
    labels = [0, 1, 2, 3]
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "per_class": classification_report(
            y_true, y_pred, labels=labels, target_names=CLASS_NAMES, output_dict=True, zero_division=0
        ),
    }


def teacher_agreement(pred: np.ndarray, target: np.ndarray) -> dict[str, float | int | None]:
    """Mean cosine and MSE between predicted and teacher vectors (row-wise)."""
    if len(pred) == 0:
        return {"n": 0, "cosine": None, "mse": None}
    num = (pred * target).sum(1)
    den = np.linalg.norm(pred, axis=1) * np.linalg.norm(target, axis=1)
    cos = num / np.maximum(den, 1e-12)
    return {"n": int(len(pred)), "cosine": float(cos.mean()), "mse": float(((pred - target) ** 2).mean())}


def linear_probe(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int = 0, max_iter: int = 1000
) -> np.ndarray:
    """Fit a multinomial logistic regression on frozen features; predicted labels for ``x_test``."""
    scaler = StandardScaler().fit(x_train)
    clf = LogisticRegression(max_iter=max_iter, C=1.0, random_state=seed)
    clf.fit(scaler.transform(x_train), y_train)
    return clf.predict(scaler.transform(x_test))


def decide(valid_logits: np.ndarray, y_valid: np.ndarray, test_logits: np.ndarray, rule: str) -> np.ndarray:
    """Test predictions: argmax, or argmax after class offsets tuned on the validation rows."""
    if rule == "tuned" and len(y_valid):
        offsets, _, _ = tune_class_offsets(valid_logits, y_valid)
        return (test_logits + offsets).argmax(1)
    return test_logits.argmax(1)


def split_masks(train_queries: np.ndarray, test_queries: np.ndarray) -> dict[str, np.ndarray]:
    """all / seen (query in the training split) / unseen test rows."""
    seen = np.isin(test_queries, np.unique(train_queries))
    return {"all": np.ones(len(test_queries), dtype=bool), "seen": seen, "unseen": ~seen}


def by_split(y: np.ndarray, pred: np.ndarray, masks: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Metrics per split that has rows."""
    return {s: classification_metrics(y[m], pred[m]) for s, m in masks.items() if m.any()}


class HeldOut:
    """The labelled train / valid / test rows every model of the table is fitted and scored on."""

    def __init__(self, data: PairArrays, rule: str, probe_rows: int = 20000, balanced: bool = True) -> None:
        lab = data.labels >= 0
        self.train = data.subset(lab & (data.splits == "train"))
        self.valid = data.subset(lab & (data.splits == "valid"))
        self.test = data.subset(lab & (data.splits == "test"))
        self.masks = split_masks(self.train.queries, self.test.queries)
        self.rule, self.probe_rows, self.balanced = rule, probe_rows, balanced

    def score(self, valid_logits: np.ndarray, test_logits: np.ndarray) -> dict[str, dict[str, Any]]:
        pred = decide(valid_logits, self.valid.labels, test_logits, self.rule)
        return by_split(self.test.labels, pred, self.masks)

    def probe(self, featurize: Callable[[PairArrays], np.ndarray], seed: int) -> dict[str, dict[str, Any]]:
        """A linear probe (the teacher head's recipe) on frozen features of the three splits."""
        head = fit_teacher_head(featurize(self.train), self.train.labels, balanced=self.balanced,
                                max_rows=self.probe_rows, seed=seed)
        valid_logits = head.logits(featurize(self.valid)) if len(self.valid) else np.zeros((0, 4))
        return self.score(valid_logits, head.logits(featurize(self.test)))


def evaluate_student(model: Student, held: HeldOut, variant: str, seed: int, data: PairArrays) -> dict[str, Any]:
    """Head (when trained) and probe metrics per split, and cosine to the teacher per split.

    The head's decision offsets were folded into its bias at training time, so it is scored by
    argmax; the probe gets the table's rule like every other probe.
    """
    res: dict[str, Any] = {"model": f"student {variant}", "variant": variant, "seed": seed}
    out_test = student_outputs(model, held.test)
    if variant_terms(variant) & {"sft", "kd"}:
        res["head"] = by_split(held.test.labels, out_test["logits"].argmax(1), held.masks)
    cache = {id(held.test): out_test["pooled"]}
    res["probe"] = held.probe(lambda d: cache[id(d)] if id(d) in cache else student_outputs(model, d)["pooled"], seed)
    # cosine on every test row with a teacher vector (labelled or not)
    test_all = data.subset((data.splits == "test") & data.has_teacher)
    masks = split_masks(held.train.queries, test_all.queries)
    proj = student_outputs(model, test_all)["projection"] if len(test_all) else np.zeros((0, model.teacher_dim))
    res["cosine"] = {s: teacher_agreement(proj[m], test_all.teacher[m]) for s, m in masks.items() if m.any()}
    return res


def entries(run: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(table name, metrics by split, cosine by split) of one evaluated model and seed."""
    if "metrics" in run:
        return [(run["model"], run["metrics"], {})]
    out = []
    if "head" in run:
        out.append((run["model"], run["head"], run.get("cosine", {})))
    out.append((run["model"] + " (probe)", run["probe"], {} if "head" in run else run.get("cosine", {})))
    return out


def aggregate(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (model, split): mean ± sd of macro-F1 over seeds, mean accuracy, seeds, rows."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    cos: dict[tuple[str, str], list[float]] = {}
    order: list[str] = []
    for run in runs:
        for name, metrics, cosine in entries(run):
            if name not in order:
                order.append(name)
            for split, m in metrics.items():
                groups.setdefault((name, split), []).append(m)
                c = cosine.get(split, {}).get("cosine")
                if c is not None:
                    cos.setdefault((name, split), []).append(c)
    rows = []
    for name in order:
        for split in SPLITS:
            ms = groups.get((name, split))
            if not ms:
                continue
            f1 = [m["macro_f1"] for m in ms]
            row = {
                "model": name, "split": split,
                "macro_f1_mean": round(statistics.fmean(f1), 4),
                "macro_f1_sd": round(statistics.stdev(f1), 4) if len(f1) > 1 else 0.0,
                "accuracy_mean": round(statistics.fmean(m["accuracy"] for m in ms), 4),
                "n_seeds": len(ms), "n_rows": ms[0]["n"],
            }
            if (name, split) in cos:
                row["cosine_to_teacher_mean"] = round(statistics.fmean(cos[(name, split)]), 4)
            rows.append(row)
    return rows


def _find(rows: list[dict[str, Any]], model: str, split: str) -> dict[str, Any] | None:
    return next((r for r in rows if r["model"] == model and r["split"] == split), None)


def targets(rows: list[dict[str, Any]], default_variant: str) -> dict[str, Any]:
    """The issue's bar, on unseen test queries (all test rows if none is unseen): default student vs
    SFT alone (+0.03), vs TF-IDF + LR, and vs 90% of the teacher probe on plain pair embeddings."""
    split = "unseen" if any(r["split"] == "unseen" for r in rows) else "all"
    me = _find(rows, f"student {default_variant}", split)
    out: dict[str, Any] = {"split": split, "student": f"student {default_variant}"}
    if me is None:
        return out
    f1 = me["macro_f1_mean"]
    checks = {
        "beats_sft_by_0.03": ("student sft", lambda o: f1 - o >= 0.03),
        "beats_tfidf_lr": ("TF-IDF + LR", lambda o: f1 > o),
        "reaches_90pct_teacher_plain_probe": ("teacher probe (plain pair)", lambda o: f1 >= 0.9 * o),
    }
    for key, (other, ok) in checks.items():
        r = _find(rows, other, split)
        if r is not None:
            out[key] = {"student": f1, "other": r["macro_f1_mean"], "met": bool(ok(r["macro_f1_mean"]))}
    return out


def _pm(r: dict[str, Any]) -> str:
    return f"{r['macro_f1_mean']:.4f} ± {r['macro_f1_sd']:.4f}" if r["n_seeds"] > 1 else f"{r['macro_f1_mean']:.4f}"


def table_markdown(rows: list[dict[str, Any]], verdict: dict[str, Any]) -> str:
    """The table (every split with rows) and the targets, as markdown."""
    lines = ["| model | split | macro-F1 (mean ± sd) | accuracy | seeds | rows | cos to teacher |",
             "|---|---|---|---|---|---|---|"]
    seen = any(r["split"] == "seen" for r in rows)
    for r in rows:
        if not seen and r["split"] == "all" and any(o["split"] == "unseen" for o in rows):
            continue  # every test query is unseen: the `all` row repeats it (eval.json keeps both)
        cos = r.get("cosine_to_teacher_mean")
        lines.append(f"| {r['model']} | {r['split']} | {_pm(r)} | {r['accuracy_mean']:.4f} | {r['n_seeds']} | "
                     f"{r['n_rows']} | {'–' if cos is None else f'{cos:.4f}'} |")
    if not seen:
        lines += ["", "No test query was seen in training (pairs split by query): every row is `unseen` "
                  "(= `all`), and there is no `seen` row."]
    checks = [(k, v) for k, v in verdict.items() if isinstance(v, dict)]
    if checks:
        lines += ["", f"Targets on `{verdict['split']}` test queries for {verdict['student']}:", ""]
        for k, v in checks:
            lines.append(f"- {k.replace('_', ' ')}: {v['student']:.4f} vs {v['other']:.4f} — "
                         f"**{'met' if v['met'] else 'missed'}**")
    return "\n".join(lines) + "\n"


def plot_rows(rows: list[dict[str, Any]], split: str, path) -> None:
    """Bar chart of macro-F1 (mean ± sd over seeds) per model on one split."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    sel = [r for r in rows if r["split"] == split]
    fig = Figure(figsize=(8, 0.35 * len(sel) + 1.2), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(sel))
    ax.barh(y, [r["macro_f1_mean"] for r in sel], xerr=[r["macro_f1_sd"] for r in sel], color="tab:blue")
    ax.set_yticks(y, [r["model"] for r in sel], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"macro-F1, {split} test queries (mean ± sd over seeds)")
    fig.tight_layout()
    fig.savefig(path)
