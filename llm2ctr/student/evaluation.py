"""Held-out evaluation of students and of a linear probe on the teacher's own embeddings.

Metrics come from scikit-learn (accuracy, macro-F1, per-class report) so they equal the reference
by construction. Cosine/MSE to the teacher are reported separately for rows whose query was seen
in training and for rows whose query never was: the gap between them is what distillation pairs
for unlabelled queries are meant to close.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, classification_report, f1_score
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from llm2ctr.student.data import PairArrays
from llm2ctr.student.modeling import LABELS as CLASS_NAMES
from llm2ctr.student.modeling import Student


@torch.no_grad()
def predict(model: Student, data: PairArrays, batch_size: int = 512) -> dict[str, np.ndarray]:
    """Pooled vectors, relevance logits and teacher-space projections for every row."""
    model.eval()
    pooled, logits, proj = [], [], []
    for s in tqdm(range(0, len(data), batch_size), desc="predict", leave=False, disable=len(data) < 20000):
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


def evaluate_student(
    model: Student,
    train: PairArrays,
    test: PairArrays,
    variant: str,
    probe_rows: int = 5000,
    seen_rows: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Head metrics (if the head was trained), a probe on the student's vectors, teacher agreement."""
    rng = np.random.default_rng(seed)
    lab_test = test.labels >= 0
    res: dict[str, Any] = {"variant": variant}
    out_test = predict(model, test)
    if variant != "mse" and lab_test.any():
        res["head"] = classification_metrics(test.labels[lab_test], out_test["logits"][lab_test].argmax(1))
    lab_train = np.flatnonzero(train.labels >= 0)
    if len(lab_train) and lab_test.any():
        pick = np.sort(rng.choice(lab_train, size=min(probe_rows, len(lab_train)), replace=False))
        x_tr = predict(model, train.subset(pick))["pooled"]
        y_hat = linear_probe(x_tr, train.labels[pick], out_test["pooled"][lab_test], seed)
        res["probe"] = classification_metrics(test.labels[lab_test], y_hat)
    train_queries = set(train.queries.tolist())
    unseen = test.has_teacher & ~np.isin(test.queries, list(train_queries))
    seen_test = test.has_teacher & ~unseen
    res["teacher_unseen_queries"] = teacher_agreement(out_test["projection"][unseen], test.teacher[unseen])
    # seen queries: the held-out rows of training queries if any, else a sample of training rows
    if seen_test.any():
        res["teacher_seen_queries"] = teacher_agreement(out_test["projection"][seen_test], test.teacher[seen_test])
        res["seen_source"] = "held-out rows of training queries"
    else:
        with_t = np.flatnonzero(train.has_teacher)
        pick = np.sort(rng.choice(with_t, size=min(seen_rows, len(with_t)), replace=False)) if len(with_t) else with_t
        sub = train.subset(pick)
        res["teacher_seen_queries"] = teacher_agreement(predict(model, sub)["projection"], sub.teacher)
        res["seen_source"] = "training rows"
    return res


def teacher_probe(train: PairArrays, test: PairArrays, probe_rows: int = 5000, seed: int = 0) -> dict[str, Any] | None:
    """Logistic regression on the teacher's vectors: the ceiling a distilled student aims at."""
    tr = np.flatnonzero((train.labels >= 0) & train.has_teacher)
    te = (test.labels >= 0) & test.has_teacher
    if not len(tr) or not te.any():
        return None
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(tr, size=min(probe_rows, len(tr)), replace=False))
    y_hat = linear_probe(train.teacher[pick], train.labels[pick], test.teacher[te], seed)
    return {"variant": "teacher probe", "probe": classification_metrics(test.labels[te], y_hat)}


def _fmt(v: Any) -> str:
    return "–" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)


def comparison_markdown(results: list[dict[str, Any]]) -> str:
    """One table: every student variant and the teacher probe on the same held-out split."""
    head = "| model | head acc | head macro-F1 | probe acc | probe macro-F1 | cos seen q | cos unseen q | MSE unseen q |"
    lines = [head, "|" + "---|" * 8]
    for r in results:
        h, p = r.get("head", {}), r.get("probe", {})
        seen, uns = r.get("teacher_seen_queries", {}), r.get("teacher_unseen_queries", {})
        lines.append(
            f"| {r['variant']} | {_fmt(h.get('accuracy'))} | {_fmt(h.get('macro_f1'))} | "
            f"{_fmt(p.get('accuracy'))} | {_fmt(p.get('macro_f1'))} | {_fmt(seen.get('cosine'))} | "
            f"{_fmt(uns.get('cosine'))} | {_fmt(uns.get('mse'))} |"
        )
    return "\n".join(lines) + "\n"
