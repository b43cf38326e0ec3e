"""Post-hoc calibration: temperature scaling of ranker logits and reliability curves.

Temperature scaling divides the logit by one scalar T > 0 fitted on held-out data. It changes
no ranking (AUC/GAUC are unchanged) and only fixes over/under-confidence, which is what PCOC and
logloss measure. The fit minimises logloss over the inverse temperature a = 1/T, where the loss
mean(softplus(-(2y-1) a z)) is convex, so a bounded 1-D search finds the global optimum.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_expit

from llm2ctr.ctr.metrics import check_labels, check_scores

__all__ = [
    "apply_temperature",
    "calibration_curve",
    "expected_calibration_error",
    "fit_temperature",
    "prob_to_logit",
]

# Search range for T; outside it the data say "no signal" (T -> inf) or "separable" (T -> 0).
T_MIN, T_MAX = 1e-3, 1e3


def prob_to_logit(p: Any, eps: float = 1e-7) -> np.ndarray:
    """logit(p) with p clipped to [eps, 1-eps], for rankers that output probabilities."""
    pa = check_scores(p, len(np.asarray(p)), "y_prob", probability=True)
    pa = np.clip(pa, eps, 1 - eps)
    return np.log(pa) - np.log1p(-pa)


def fit_temperature(logits: Any, y: Any, t_min: float = T_MIN, t_max: float = T_MAX) -> float:
    """T > 0 minimising the logloss of sigmoid(logits / T) on (logits, y).

    Needs both classes (with one class the optimum is at a bound and means nothing). T > 1
    softens over-confident predictions, T < 1 sharpens under-confident ones. If logits are all
    zero the loss does not depend on T and 1.0 is returned.
    """
    ya = check_labels(y)
    z = check_scores(logits, len(ya), "logits", probability=False)
    if len(ya) == 0 or ya.min() == ya.max():
        raise ValueError("fit_temperature: y must contain both clicks and non-clicks")
    if not (0 < t_min < t_max):
        raise ValueError(f"fit_temperature: need 0 < t_min < t_max, got {t_min}, {t_max}")
    if not np.any(z):
        return 1.0
    signed = (2 * ya - 1) * z  # loss(a) = mean(-log_expit(a * signed))

    def loss(log_a: float) -> float:
        return float(-log_expit(np.exp(log_a) * signed).mean())

    # convex in a, and a -> log a is monotone, so the search over log a is unimodal
    res = minimize_scalar(
        loss, bounds=(-np.log(t_max), -np.log(t_min)), method="bounded", options={"xatol": 1e-9}
    )
    return float(np.exp(-res.x))


def apply_temperature(logits: Any, temperature: float) -> np.ndarray:
    """Calibrated click probabilities sigmoid(logits / T) (float64)."""
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"apply_temperature: temperature must be a finite number > 0, got {temperature}")
    z = np.asarray(logits, dtype=np.float64)
    return expit(z / temperature)


def calibration_curve(
    y: Any, p: Any, n_bins: int = 10, strategy: str = "uniform"
) -> dict[str, np.ndarray | float]:
    """Reliability bins: per bin the mean predicted p, the observed CTR and the count.

    ``strategy="uniform"`` uses equal-width bins on [0, 1]; ``"quantile"`` equal-count bins,
    better for CTRs of a few percent where uniform bins leave most rows in the first bin.
    Empty bins have count 0 and ``nan`` means. Returns edges (n_bins+1), mean_p, mean_y, count
    (n_bins each) and ece (count-weighted mean |mean_p - mean_y|).
    """
    ya = check_labels(y)
    pa = check_scores(p, len(ya), "y_prob", probability=True)
    if n_bins < 1:
        raise ValueError(f"calibration_curve: n_bins must be >= 1, got {n_bins}")
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    elif strategy == "quantile":
        edges = np.quantile(pa, np.linspace(0, 1, n_bins + 1)) if len(pa) else np.linspace(0, 1, n_bins + 1)
        edges[0], edges[-1] = 0.0, 1.0
    else:
        raise ValueError(f"calibration_curve: strategy must be 'uniform' or 'quantile', got {strategy!r}")
    # bin i holds edges[i] <= p < edges[i+1]; p == 1 goes in the last bin
    idx = np.clip(np.searchsorted(edges, pa, side="right") - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins).astype(np.int64)
    sum_p = np.bincount(idx, weights=pa, minlength=n_bins)
    sum_y = np.bincount(idx, weights=ya, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.where(count > 0, sum_p / count, np.nan)
        mean_y = np.where(count > 0, sum_y / count, np.nan)
    nz = count > 0
    ece = float(np.dot(count[nz], np.abs(mean_p[nz] - mean_y[nz])) / count.sum()) if nz.any() else float("nan")
    return {"edges": edges, "mean_p": mean_p, "mean_y": mean_y, "count": count, "ece": ece}


def expected_calibration_error(y: Any, p: Any, n_bins: int = 10, strategy: str = "quantile") -> float:
    """ECE: count-weighted mean gap between predicted and observed CTR over reliability bins."""
    return float(calibration_curve(y, p, n_bins, strategy)["ece"])
