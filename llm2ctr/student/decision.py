"""The relevance decision rule: per-class logit offsets tuned for validation macro-F1.

Argmax of a head trained on imbalanced labels favours the frequent level; macro-F1 weighs every
level equally. Adding one offset per class to the logits (coordinate ascent on validation
macro-F1) moves the decision boundaries without retraining, and because the offsets are added
to the stock classifier's bias, any loader of the exported model applies the same rule.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.metrics import f1_score

log = logging.getLogger(__name__)
LABELS = [0, 1, 2, 3]


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(f1_score(y_true, y_pred, labels=LABELS, average="macro", zero_division=0))


def tune_class_offsets(
    logits: np.ndarray, labels: np.ndarray, grid: np.ndarray | None = None, passes: int = 3
) -> tuple[np.ndarray, float, float]:
    """(offsets [4], macro-F1 with argmax, macro-F1 with the offsets) on these rows.

    Class 0's offset stays 0 (only differences matter). Offsets are in units of the logits'
    spread, so the grid suits any temperature; ties keep the smaller move.
    """
    if len(labels) == 0:
        return np.zeros(logits.shape[1]), 0.0, 0.0
    scale = float(np.std(logits)) or 1.0
    grid = np.linspace(-2.0, 2.0, 41) if grid is None else grid
    grid = grid[np.argsort(np.abs(grid), kind="stable")]  # smallest move first wins ties
    offsets = np.zeros(logits.shape[1])
    base = macro_f1(labels, logits.argmax(1))
    best = base
    for _ in range(passes):
        improved = False
        for c in range(1, logits.shape[1]):
            for g in grid:
                trial = offsets.copy()
                trial[c] = g * scale
                f = macro_f1(labels, (logits + trial).argmax(1))
                if f > best + 1e-9:
                    best, offsets, improved = f, trial, True
        if not improved:
            break
    return offsets, base, best


def head_collapse(pred: np.ndarray, labels: np.ndarray, share: float = 0.95) -> dict | None:
    """A description when one class takes ``share`` of predictions but not of the true labels; else None."""
    if len(pred) == 0:
        return None
    counts = np.bincount(pred, minlength=len(LABELS)) / len(pred)
    true = np.bincount(labels, minlength=len(LABELS)) / max(len(labels), 1)
    top = int(counts.argmax())
    if counts[top] >= share and true.max() < share:
        return {"class": top, "predicted_share": round(float(counts[top]), 4),
                "true_share": round(float(true[top]), 4)}
    return None
