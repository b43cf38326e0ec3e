"""Lexical relevance baselines every small encoder must clear: TF-IDF + LR and BM25/overlap + LR.

On a real labelled set TF-IDF + logistic regression beat both neural students, so the
distillation table always shows them, fitted on the same training split, with the same class
weighting and the same validation-tuned decision rule as the students.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from llm2ctr.data.lexical import lexical_features
from llm2ctr.student.decision import macro_f1

Texts = tuple[Sequence[str], Sequence[str]]  # (queries, item texts), aligned


def _logits(clf: LogisticRegression, x) -> np.ndarray:
    out = np.full((x.shape[0], 4), -np.inf)
    out[:, clf.classes_] = clf.decision_function(x)
    return out


def _fit_select(x_train, y_train, x_valid, y_valid, grid: Sequence[float], balanced: bool, seed: int):
    """Fit one LR per C; keep the best on validation macro-F1 (the first C when there is no validation)."""
    best, best_f1 = None, -1.0
    for c in grid:
        clf = LogisticRegression(C=c, max_iter=2000, random_state=seed, class_weight="balanced" if balanced else None)
        clf.fit(x_train, y_train)
        if x_valid is None or len(y_valid) == 0:
            return clf
        f1 = macro_f1(y_valid, _logits(clf, x_valid).argmax(1))
        if f1 > best_f1:
            best, best_f1 = clf, f1
    return best


def tfidf_lr(train: Texts, y_train: np.ndarray, valid: Texts, y_valid: np.ndarray, test: Texts,
             balanced: bool = True, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Word 1–2-gram TF-IDF of the query, of the item, and their element-wise product (shared
    terms) -> LR, C chosen on validation. Returns (valid logits, test logits)."""
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, token_pattern=r"(?u)\b\w+\b")
    vec.fit(list(train[0]) + list(train[1]))

    def feats(t: Texts):
        q, i = vec.transform(t[0]), vec.transform(t[1])
        return sp.hstack([q, i, q.multiply(i)]).tocsr()

    xv = feats(valid) if len(y_valid) else None
    clf = _fit_select(feats(train), y_train, xv, y_valid, (1.0, 10.0, 100.0), balanced, seed)
    return (_logits(clf, xv) if xv is not None else np.zeros((0, 4))), _logits(clf, feats(test))


def lexical_lr(train: Texts, y_train: np.ndarray, valid: Texts, y_valid: np.ndarray, test: Texts,
               balanced: bool = True, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Token overlap, Jaccard, BM25, TF-IDF cosine and item length (data/lexical.py) -> LR."""
    f_train = lexical_features(train[0], train[1])
    scaler = StandardScaler().fit(f_train)

    def feats(t: Texts) -> np.ndarray:
        return scaler.transform(lexical_features(t[0], t[1])) if len(t[0]) else np.zeros((0, f_train.shape[1]))

    xv = feats(valid) if len(y_valid) else None
    clf = _fit_select(scaler.transform(f_train), y_train, xv, y_valid, (1.0,), balanced, seed)
    return (_logits(clf, xv) if xv is not None else np.zeros((0, 4))), _logits(clf, feats(test))
