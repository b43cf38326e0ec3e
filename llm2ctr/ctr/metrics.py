"""CTR evaluation metrics: AUC, GAUC, PCOC, logloss, AP, weighted logloss, per segment.

Everything is O(n log n) vectorised numpy: sorts and binary searches, no loop over rows or
users. The article's sample code computes AUC with an O(n^2) pair loop and the usual GAUC is a
Python loop per user; on a 10M-row test day those take hours or minutes, these take seconds
(benchmarks/bench_metrics.py). Each metric equals scikit-learn's on the same data, ties
included (tests/ctr/test_metrics.py).

Conventions (documented because they differ from scikit-learn, which raises):

* A metric that is undefined on the data (AUC with one class, PCOC with no clicks, an empty
  segment) is ``nan``, so one degenerate segment never stops a whole report.
* GAUC skips users whose impressions are all clicks or all non-clicks (their AUC is undefined)
  and weights the others by their number of impressions; how many users and impressions were
  skipped is returned beside the value.
* Ranking metrics (:func:`auc`, :func:`gauc`, :func:`average_precision`) accept any finite score
  (a logit works as well as a probability); the others need probabilities in [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

__all__ = [
    "GaucResult",
    "check_labels",
    "check_scores",
    "auc",
    "average_precision",
    "evaluate",
    "evaluate_segments",
    "gauc",
    "logloss",
    "pcoc",
    "pcoc_deviation",
    "weighted_logloss",
]


class GaucResult(NamedTuple):
    """GAUC and what it was computed over (``users`` with both classes; the rest skipped)."""

    gauc: float
    users: int
    skipped_users: int
    skipped_impressions: int


# ---------------------------------------------------------------- input checks


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _value(arr: np.ndarray, i: int) -> Any:
    """Row ``i`` as a plain Python value, so messages read ``1.5``, not ``np.float64(1.5)``."""
    v = arr[i]
    return v.item() if isinstance(v, np.generic) else v


def check_labels(y: Any, name: str = "y_true") -> np.ndarray:
    """0/1 labels as float64; the error names the first bad row and its value."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of 0/1 labels, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr.astype(np.float64)
    if not (np.issubdtype(arr.dtype, np.number)):
        raise ValueError(f"{name}: expected numeric 0/1 labels, got dtype {arr.dtype}")
    out = arr.astype(np.float64)
    bad = (out != 0) & (out != 1)
    if bad.any():
        i = _first_bad(bad)
        raise ValueError(f"{name}: expected 0/1 labels, row {i} is {_value(arr, i)!r}")
    return out


def check_scores(p: Any, n: int, name: str, probability: bool) -> np.ndarray:
    """Scores as float64, checked finite (and in [0, 1] when they must be probabilities)."""
    arr = np.asarray(p)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of scores, got shape {arr.shape}")
    if len(arr) != n:
        raise ValueError(f"length mismatch: y_true has {n} rows but {name} has {len(arr)}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    out = arr.astype(np.float64)
    bad = ~np.isfinite(out)
    if bad.any():
        i = _first_bad(bad)
        raise ValueError(f"{name}: row {i} is {_value(arr, i)!r}; expected a finite number")
    if probability:
        bad = (out < 0) | (out > 1)
        if bad.any():
            i = _first_bad(bad)
            raise ValueError(f"{name}: row {i} is {_value(arr, i)!r}; expected a probability in [0, 1]")
    return out


def _check(y: Any, p: Any, probability: bool) -> tuple[np.ndarray, np.ndarray]:
    ya = check_labels(y)
    return ya, check_scores(p, len(ya), "y_prob", probability)


def _group_codes(groups: Any, n: int) -> tuple[np.ndarray, int]:
    """Dense int codes for user ids (any hashable dtype) in O(n); missing ids are an error."""
    arr = np.asarray(groups)
    if arr.ndim != 1:
        raise ValueError(f"user_ids: expected a 1-D array, got shape {arr.shape}")
    if len(arr) != n:
        raise ValueError(f"length mismatch: y_true has {n} rows but user_ids has {len(arr)}")
    codes, uniques = pd.factorize(arr, use_na_sentinel=True)
    if n and codes.min() < 0:
        i = _first_bad(codes < 0)
        raise ValueError(f"user_ids: row {i} is {_value(arr, i)!r}; expected a user id, not a missing value")
    return codes.astype(np.int64, copy=False), len(uniques)


# ---------------------------------------------------------------- ranking metrics


def _run_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Start index of each run of equal values in a sorted array."""
    new = np.empty(len(sorted_keys), dtype=bool)
    if len(new):
        new[0] = True
        np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=new[1:])
    return np.flatnonzero(new)


def _auc_ap(ya: np.ndarray, pa: np.ndarray) -> tuple[float, float]:
    """AUC and average precision of checked arrays.

    Sorting the clicks' and the non-clicks' scores separately (``np.sort``, no argsort and no
    gathers) and binary-searching each click's score among the non-clicks gives, per click, the
    non-clicks strictly below it and tied with it: AUC = sum(below + ties / 2) / (P N). AP is the
    mean over clicks of the precision at the click's score (all rows scoring >= it), which sums
    each distinct threshold's precision once per click it holds, as scikit-learn does.
    """
    is_pos = ya == 1
    pos = np.sort(pa[is_pos])
    neg = np.sort(pa[~is_pos])
    n_pos, n_neg = len(pos), len(neg)
    if n_pos == 0:
        return float("nan"), float("nan")
    neg_lo = np.searchsorted(neg, pos, side="left")
    if n_neg == 0:
        value_auc = float("nan")
    else:
        neg_hi = np.searchsorted(neg, pos, side="right")
        below = neg_lo.sum(dtype=np.float64)
        ties = (neg_hi - neg_lo).sum(dtype=np.float64)
        value_auc = float((below + 0.5 * ties) / (float(n_pos) * n_neg))
    tp = n_pos - np.searchsorted(pos, pos, side="left")  # clicks scoring >= this click
    fp = n_neg - neg_lo  # non-clicks scoring >= this click
    value_ap = float(np.mean(tp / (tp + fp)))
    return value_auc, value_ap


def _monotone_int_keys(pa: np.ndarray) -> tuple[np.ndarray, int]:
    """Non-negative int64 keys with the order and ties of ``pa``, and how many bits they use.

    Scores that are exact float32 values (every model output in float32) map to their IEEE
    bits, flipped so that integer order is float order: O(n), no sort. Other float64 scores
    fall back to their dense rank (one argsort).
    """
    f32 = pa.astype(np.float32)
    if np.array_equal(f32.astype(np.float64), pa):
        u = (f32 + np.float32(0.0)).view(np.uint32).astype(np.int64)  # +0.0: -0.0 ties with 0.0
        keys = np.where(u >= 1 << 31, 0xFFFFFFFF - u, u + (1 << 31))
        return keys, 32
    order = np.argsort(pa)
    ps = pa[order]
    new = np.empty(len(ps), dtype=np.int64)
    if len(new):
        new[0] = 0
        np.not_equal(ps[1:], ps[:-1], out=new[1:])
    keys = np.empty(len(ps), dtype=np.int64)
    keys[order] = np.cumsum(new)
    return keys, max(1, int(keys.max(initial=0)).bit_length())


def auc(y: Any, p: Any) -> float:
    """ROC AUC by ranks: P(score of a random click > a random non-click), ties count one half.

    O(n log n): two sorts and a binary search (see ``_auc_ap``). ``nan`` with a single class.
    """
    return _auc_ap(*_check(y, p, probability=False))[0]


def gauc(y: Any, p: Any, groups: Any) -> GaucResult:
    """Impression-weighted mean of per-user AUC: sum_u n_u AUC_u / sum_u n_u.

    Users with only clicks or only non-clicks have no AUC and are skipped (counted in the
    result). One sort of packed (user, score, click) int64 keys replaces a loop over users:
    within a user, each run of tied scores has its clicks beat the user's non-clicks in lower
    runs and tie with those in its own run; the negatives-below count restarts at each user.
    """
    ya, pa = _check(y, p, probability=False)
    return _gauc(ya, pa, *_group_codes(groups, len(ya)))


def _gauc(ya: np.ndarray, pa: np.ndarray, codes: np.ndarray, n_users: int) -> GaucResult:
    if len(ya) == 0:
        return GaucResult(float("nan"), 0, 0, 0)
    score_keys, bits = _monotone_int_keys(pa)
    if int(n_users - 1).bit_length() + bits + 1 > 63:
        raise ValueError(f"gauc: {n_users} users x {bits}-bit scores do not fit one int64 sort key")
    # one int64 per row: user | score | click, sorted with np.sort (no argsort, no gathers)
    key = (codes << (bits + 1)) | (score_keys << 1) | ya.astype(np.int64)
    key.sort()
    ys = (key & 1).astype(np.float64)
    key >>= 1  # (user, score): a run of equal values is a run of tied scores of one user
    starts = _run_starts(key)
    pos = np.add.reduceat(ys, starts)
    neg = np.diff(np.append(starts, len(key))) - pos
    run_user = key[starts] >> bits
    neg_below = np.cumsum(neg) - neg
    first_run = _run_starts(run_user)  # each user's first run
    runs_per_user = np.diff(np.append(first_run, len(run_user)))
    neg_below -= np.repeat(neg_below[first_run], runs_per_user)
    num = np.bincount(run_user, weights=pos * (neg_below + 0.5 * neg), minlength=n_users)
    n_u = np.bincount(codes, minlength=n_users).astype(np.float64)
    pos_u = np.bincount(codes, weights=ya, minlength=n_users)
    neg_u = n_u - pos_u
    valid = (pos_u > 0) & (neg_u > 0)
    skipped_users = int(n_users - valid.sum())
    skipped_imps = int(n_u[~valid].sum())
    if not valid.any():
        return GaucResult(float("nan"), 0, skipped_users, skipped_imps)
    auc_u = num[valid] / (pos_u[valid] * neg_u[valid])
    value = float(np.dot(n_u[valid], auc_u) / n_u[valid].sum())
    return GaucResult(value, int(valid.sum()), skipped_users, skipped_imps)


def average_precision(y: Any, p: Any) -> float:
    """Average precision, sum_k (R_k - R_{k-1}) P_k over distinct score thresholds (sklearn's).

    ``nan`` when there is no click.
    """
    return _auc_ap(*_check(y, p, probability=False))[1]


# ---------------------------------------------------------------- calibration / loss metrics


def _clip(p: np.ndarray) -> np.ndarray:
    eps = np.finfo(np.float64).eps
    return np.clip(p, eps, 1 - eps)


def logloss(y: Any, p: Any) -> float:
    """Mean binary cross-entropy (natural log); p clipped to [eps, 1-eps] like scikit-learn."""
    return _logloss(*_check(y, p, probability=True))


def _logloss(ya: np.ndarray, pa: np.ndarray) -> float:
    if len(ya) == 0:
        return float("nan")
    pc = _clip(pa)
    return float(-np.mean(ya * np.log(pc) + (1 - ya) * np.log1p(-pc)))


def weighted_logloss(y: Any, p: Any) -> float:
    """Class-balanced logloss: 0.5 E[-log p | y=1] + 0.5 E[-log(1-p) | y=0].

    With CTRs of a few percent the plain logloss is dominated by non-clicks; this weighs the two
    classes equally. ``nan`` unless both classes are present.
    """
    return _weighted_logloss(*_check(y, p, probability=True))


def _weighted_logloss(ya: np.ndarray, pa: np.ndarray) -> float:
    is_pos = ya == 1
    if not is_pos.any() or is_pos.all():
        return float("nan")
    pc = _clip(pa)
    return float(0.5 * -np.log(pc[is_pos]).mean() + 0.5 * -np.log1p(-pc[~is_pos]).mean())


def pcoc(y: Any, p: Any) -> float:
    """Predicted CTR over observed CTR, mean(p) / mean(y); 1 is perfectly calibrated on average."""
    return _pcoc(*_check(y, p, probability=True))


def _pcoc(ya: np.ndarray, pa: np.ndarray) -> float:
    if len(ya) == 0 or ya.sum() == 0:
        return float("nan")
    return float(pa.mean() / ya.mean())


def pcoc_deviation(y: Any, p: Any) -> float:
    """|PCOC - 1| (the paper reports 1.7% for PRECTR-V2 vs 2.3% for the baseline)."""
    return abs(pcoc(y, p) - 1.0)


# ---------------------------------------------------------------- bundles


def evaluate(y_true: Any, y_prob: Any, user_ids: Any = None) -> dict[str, float | int]:
    """Every metric of the report for one set of predictions.

    Keys: auc, gauc, gauc_users, gauc_skipped_users, gauc_skipped_impressions, pcoc, pcoc_dev,
    logloss, ap, weighted_logloss, n, n_pos, ctr. Without ``user_ids`` GAUC is ``nan``.
    """
    ya, pa = _check(y_true, y_prob, probability=True)
    n = len(ya)
    n_pos = int(ya.sum())
    if user_ids is not None:
        g = _gauc(ya, pa, *_group_codes(user_ids, n))
    else:
        g = GaucResult(float("nan"), 0, 0, 0)
    pc = _pcoc(ya, pa)
    value_auc, value_ap = _auc_ap(ya, pa)
    return {
        "auc": value_auc,
        "gauc": g.gauc,
        "gauc_users": g.users,
        "gauc_skipped_users": g.skipped_users,
        "gauc_skipped_impressions": g.skipped_impressions,
        "pcoc": pc,
        "pcoc_dev": abs(pc - 1.0),
        "logloss": _logloss(ya, pa),
        "ap": value_ap,
        "weighted_logloss": _weighted_logloss(ya, pa),
        "n": n,
        "n_pos": n_pos,
        "ctr": n_pos / n if n else float("nan"),
    }


def evaluate_segments(
    y: Any, p: Any, user_ids: Any, segments: Mapping[str, Any]
) -> dict[str, dict[str, float | int]]:
    """:func:`evaluate` on each boolean mask in ``segments`` (e.g. all / cold_start / active).

    An empty segment gives ``n = 0`` and ``nan`` metrics rather than an error.
    """
    ya, pa = _check(y, p, probability=True)
    uid = None if user_ids is None else np.asarray(user_ids)
    if uid is not None and len(uid) != len(ya):
        raise ValueError(f"length mismatch: y_true has {len(ya)} rows but user_ids has {len(uid)}")
    out: dict[str, dict[str, float | int]] = {}
    for name, mask in segments.items():
        m = np.asarray(mask)
        if m.dtype != bool:
            raise ValueError(f"segment {name!r}: expected a boolean mask, got dtype {m.dtype}")
        if m.shape != ya.shape:
            raise ValueError(
                f"segment {name!r}: mask has shape {m.shape} but y_true has {len(ya)} rows"
            )
        out[name] = evaluate(ya[m], pa[m], None if uid is None else uid[m])
    return out
