"""Paired bootstrap intervals for ranker comparisons: weighted AUC / GAUC over many replicates.

A seeded study reports, for each claim "model A beats model B on metric M", the mean effect over
seeds and a 95% paired bootstrap interval over requests pooled across seeds (DESIGN.md section 8),
against click labels and against the simulator's true click probability. A resample changes only
row multiplicities, never the score order, so each score vector is sorted once
(:class:`SortedScores`) and every replicate is O(n) cumulative sums over the sorted rows: no sort
per replicate, which is what makes B = 1000 x ~30 models x 200k rows affordable.

One definition covers labels, soft labels and resamples. Row i has score s_i, positive weight a_i,
negative weight b_i and multiplicity r_i (labels: a = y, b = 1 - y; truth: a = p, b = 1 - p)::

    AUC = sum_ij r_i a_i r_j b_j ([s_i > s_j] + [s_i == s_j] / 2) / (sum_i r_i a_i * sum_j r_j b_j)

over ordered pairs including i == j: scikit-learn's ``roc_auc_score`` on the data set holding each
row once as a positive (sample_weight r a) and once as a negative (weight r b). GAUC averages the
per-group AUC weighted by n_g = sum of r over the group, over groups with both totals > 0: for 0/1
labels and unit weights it is :func:`llm2ctr.ctr.metrics.gauc`.

Conventions follow ``metrics.py``: ``nan`` when a value is undefined (no positive or no negative
weight, a resample without clicks); bad input raises a ValueError naming the argument and row.

Replay: the only random draws are ``rng.integers(0, R, size=(B, R))`` for requests
(:func:`draw_requests`), then ``rng.integers(0, S, size=(B, S))`` for seeds (:func:`paired_effect`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from llm2ctr.ctr.metrics import check_scores

__all__ = [
    "SortedScores",
    "draw_requests",
    "paired_effect",
    "request_bootstrap",
    "request_weights",
    "spearman_replicates",
    "verdict",
]

CHUNK_BYTES = 64 << 20  # bound on the float64 temporaries of one chunk of replicates
_TEMPS = 8  # [chunk, n] float64 arrays alive at once in a chunk


def _chunk_rows(n: int) -> int:
    return max(1, CHUNK_BYTES // (_TEMPS * 8 * max(n, 1)))


def _bad(name: str, arr: np.ndarray, mask: np.ndarray, expected: str) -> ValueError:
    i = np.unravel_index(int(np.flatnonzero(mask)[0]), mask.shape)
    where = f"replicate {i[0]}, row {i[1]}" if len(i) == 2 else f"row {i[0]}"
    v = arr[i]
    return ValueError(f"{name}: {where} is {v.item() if isinstance(v, np.generic) else v!r}; expected {expected}")


def _weights(x: Any, n: int, name: str) -> np.ndarray:
    """A 1-D array of finite weights >= 0 (bool allowed) as float64."""
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of weights, got shape {arr.shape}")
    if len(arr) != n:
        raise ValueError(f"length mismatch: scores have {n} rows but {name} has {len(arr)}")
    if arr.dtype != bool and (not np.issubdtype(arr.dtype, np.number) or arr.dtype.kind == "c"):
        raise ValueError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    out = arr.astype(np.float64)
    bad = ~((out >= 0) & (out < np.inf))
    if bad.any():
        raise _bad(name, arr, bad, "a finite weight >= 0")
    return out


def _group_codes(groups: Any, n: int) -> np.ndarray:
    arr = np.asarray(groups)
    if arr.shape != (n,):
        raise ValueError(f"groups: expected {n} group ids (one per score), got shape {arr.shape}")
    if arr.dtype.kind in "fO":
        missing = np.array([v is None or v != v for v in arr.tolist()], dtype=bool)
        if missing.any():
            raise _bad("groups", arr, missing, "a group id, not a missing value")
    try:
        return np.unique(arr, return_inverse=True)[1].reshape(-1).astype(np.int64)
    except TypeError as e:
        raise ValueError(f"groups: ids must be mutually comparable ({e})") from None


def _run_starts(*sorted_keys: np.ndarray) -> np.ndarray:
    """First index of each run where every key is constant (keys sorted lexicographically)."""
    n = len(sorted_keys[0])
    new = np.zeros(n, dtype=bool)
    if n:
        new[0] = True
        for k in sorted_keys:
            new[1:] |= k[1:] != k[:-1]
    return np.flatnonzero(new)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


class SortedScores:
    """One score vector, sorted once (by group, then score), for many weighted AUC / GAUC calls.

    ``auc(a, b, r)`` and ``gauc(a, b, r)`` take weights a, b [n] (see the module docstring) and
    multiplicities r: None (all ones) or [n] gives a float, [B, n] gives [B]. Each replicate is
    O(n); replicates are processed in chunks keeping temporaries under ``CHUNK_BYTES``. Sums are
    float64: exact for 0/1 labels times integer multiplicities, ~1e-14 relative error otherwise.
    """

    def __init__(self, scores: Any, groups: Any = None) -> None:
        arr = np.asarray(scores)
        s = check_scores(arr, arr.size, "scores", probability=False)
        self.n = len(s)
        self.grouped = groups is not None
        if self.grouped:
            codes = _group_codes(groups, self.n)
            self._order = np.lexsort((s, codes))
            cs = codes[self._order]
            self._starts = _run_starts(s[self._order], cs)  # first sorted row of each tie run
            self._group_runs = _run_starts(cs[self._starts])  # first run of each group
            self._group_rows = self._starts[self._group_runs]  # first sorted row of each group
        else:
            self._order = np.argsort(s, kind="stable")
            self._starts = _run_starts(s[self._order])
        self._ties = len(self._starts) < self.n
        self._scores = s
        self._ungrouped: SortedScores | None = None  # global score order, sorted on first auc()

    def auc(self, a: Any, b: Any, r: Any = None) -> float | np.ndarray:
        """Weighted AUC of the whole set (groups ignored), per replicate of ``r``."""
        if self.grouped:
            if self._ungrouped is None:
                self._ungrouped = SortedScores(self._scores)
            return self._ungrouped.auc(a, b, r)
        return self._evaluate(a, b, r, grouped=False)

    def gauc(self, a: Any, b: Any, r: Any = None) -> float | np.ndarray:
        """Weighted GAUC (groups given at construction), per replicate of ``r``."""
        if not self.grouped:
            raise ValueError("gauc: these SortedScores were built without groups")
        return self._evaluate(a, b, r, grouped=True)

    def _evaluate(self, a: Any, b: Any, r: Any, grouped: bool) -> float | np.ndarray:
        a_s = _weights(a, self.n, "a")[self._order]
        b_s = _weights(b, self.n, "b")[self._order]
        r = np.ones(self.n) if r is None else np.asarray(r)
        single, shape = r.ndim == 1, r.shape
        r = r[None] if r.ndim == 1 else r
        if r.ndim != 2 or r.shape[1] != self.n:
            raise ValueError(f"r: expected shape ({self.n},) or (B, {self.n}), got {shape}")
        if r.dtype != bool and (not np.issubdtype(r.dtype, np.number) or r.dtype.kind == "c"):
            raise ValueError(f"r: expected real numbers, got dtype {r.dtype}")
        out = np.full(len(r), np.nan)
        step = _chunk_rows(self.n)
        for k0 in range(0, len(r) if self.n else 0, step):
            rc = np.take(r[k0 : k0 + step], self._order, axis=1).astype(np.float64, copy=False)
            bad = ~((rc >= 0) & (rc < np.inf))
            if bad.any():
                k, j = np.argwhere(bad)[0]
                i = int(self._order[j])
                where = f"row {i}" if single else f"replicate {k0 + k}, row {i}"
                raise ValueError(f"r: {where} is {r[k0 + k, i].item()!r}; expected a finite weight >= 0")
            out[k0 : k0 + step] = self._chunk(rc, a_s, b_s, grouped)
        return float(out[0]) if single else out

    def _chunk(self, rc: np.ndarray, a_s: np.ndarray, b_s: np.ndarray, grouped: bool) -> np.ndarray:
        """[c, n] sorted multiplicities -> [c] values: per tie run, A beats the B below, ties 1/2."""
        pos = rc * a_s
        neg = rc * b_s
        if self._ties:
            pos = np.add.reduceat(pos, self._starts, axis=1)
            neg = np.add.reduceat(neg, self._starts, axis=1)
        half = 0.5 * neg
        if not grouped:
            mid = np.cumsum(neg, axis=1)
            mid -= half  # negative weight in lower runs + half of the run's own (ties)
            return _ratio((pos * mid).sum(axis=1), pos.sum(axis=1) * neg.sum(axis=1))
        gr = self._group_runs
        tot_pos = np.add.reduceat(pos, gr, axis=1)
        tot_neg = np.add.reduceat(neg, gr, axis=1)
        # restart the cumulative sum at each group: each group's first run subtracts the previous
        # group's total, so the running sum stays at the group's scale (no cancellation of a
        # large global sum: ~1e-14 relative error with soft labels instead of ~1e-12)
        neg[:, gr[1:]] -= tot_neg[:, :-1]
        mid = np.cumsum(neg, axis=1)
        mid -= half
        num = np.add.reduceat(np.multiply(pos, mid, out=mid), gr, axis=1)
        n_g = np.add.reduceat(rc, self._group_rows, axis=1)
        valid = (tot_pos > 0) & (tot_neg > 0)
        auc_g = _ratio(num, np.where(valid, tot_pos * tot_neg, 0.0))
        w = np.where(valid, n_g, 0.0)
        return _ratio((w * np.where(valid, auc_g, 0.0)).sum(axis=1), w.sum(axis=1))


def _codes(request_codes: Any) -> tuple[np.ndarray, int]:
    arr = np.asarray(request_codes)
    if arr.ndim != 1 or (len(arr) and arr.dtype.kind not in "iu"):
        raise ValueError(f"request_codes: expected a 1-D integer array, got {arr.dtype} {arr.shape}")
    if len(arr) and arr.min() < 0:
        raise _bad("request_codes", arr, arr < 0, "a code >= 0")
    codes = arr.astype(np.int64)
    n_req = int(codes.max()) + 1 if len(codes) else 0
    empty = np.bincount(codes, minlength=n_req) == 0
    if empty.any():
        raise ValueError(f"request_codes: code {int(np.flatnonzero(empty)[0])} has no row; codes must "
                         "be dense 0..R-1 (np.unique(ids, return_inverse=True))")
    return codes, n_req


def _check_idx(idx: Any, n_req: int, name: str) -> np.ndarray:
    idx = np.asarray(idx)
    if idx.ndim != 2 or (idx.size and idx.dtype.kind not in "iu"):
        raise ValueError(f"{name}: expected a [B, R] integer array, got {idx.dtype} {idx.shape}")
    bad = (idx < 0) | (idx >= n_req)
    if bad.any():
        raise _bad(name, idx, bad, f"a request index in [0, {n_req})")
    return idx


def _counts(idx: np.ndarray, n_req: int) -> np.ndarray:
    """[B, R] checked indices -> [B, R] multiplicity of each request: one bincount with offsets."""
    offsets = np.arange(len(idx), dtype=np.int64)[:, None] * n_req
    flat = (idx + offsets).ravel()
    return np.bincount(flat, minlength=len(idx) * n_req).reshape(len(idx), n_req)


def draw_requests(n_requests: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """The request draw, exactly ``rng.integers(0, n_requests, size=(n_boot, n_requests))``.

    Row k lists replicate k's requests (R drawn with replacement). A separate step so one draw
    feeds :func:`request_weights` (possibly chunk by chunk, see there) and
    :func:`spearman_replicates`, and a test can replay it.
    """
    return rng.integers(0, n_requests, size=(n_boot, n_requests))


def request_weights(request_codes: Any, idx: Any) -> np.ndarray:
    """float32 [B, n]: each row's multiplicity (its request's count in ``idx[k]``) per replicate.

    [B, n] float32 is 800 MB at B = 1000, n = 200k: to bound memory, call it on ``idx[k0:k1]``
    and pass each chunk to :class:`SortedScores`; the values do not depend on the chunking.
    """
    codes, n_req = _codes(request_codes)
    return _counts(_check_idx(idx, n_req, "idx"), n_req).astype(np.float32)[:, codes]  # gather from the small [B, R] table


def request_bootstrap(request_codes: Any, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """float32 [B, n] row multiplicities when R = max(code) + 1 requests are drawn with
    replacement: ``request_weights(codes, draw_requests(R, n_boot, rng))``."""
    codes, n_req = _codes(request_codes)
    return request_weights(codes, draw_requests(n_req, n_boot, rng))


def paired_effect(
    a_point: Any, b_point: Any, a_reps: Any, b_reps: Any, rng: np.random.Generator,
    higher_is_better: bool = True,
) -> dict[str, Any]:
    """Mean effect of A over B across S seeds, with a paired two-level bootstrap interval.

    effect = mean_s(a_point - b_point). Replicate k's effect is the mean of (a_reps - b_reps)[s, k]
    over S seeds drawn with replacement (``rng.integers(0, S, size=(B, S))``, one call, made after
    the request draw): column k of a_reps and b_reps must come from the same request resample, so
    request noise cancels between the models (paired) and seed noise is resampled too. Replicates
    that are not finite (a resample without clicks) are dropped; ``n_boot_used`` counts the rest.
    ci_low / ci_high are their 2.5 / 97.5 percentiles (numpy's linear method), sd their std (ddof=1).
    The sign is always effect = A - B: with ``higher_is_better=False`` (logloss) A is better when
    the effect is negative; ``a_better`` says whether the interval excludes 0 on A's side.
    """
    ap, bp = np.asarray(a_point, np.float64), np.asarray(b_point, np.float64)
    ar, br = np.asarray(a_reps, np.float64), np.asarray(b_reps, np.float64)
    if ap.ndim != 1 or ap.shape != bp.shape or len(ap) == 0:
        raise ValueError(f"a_point, b_point: expected two [S] arrays, S >= 1, got {ap.shape}, {bp.shape}")
    if ar.ndim != 2 or ar.shape != br.shape or len(ar) != len(ap):
        raise ValueError(f"a_reps, b_reps: expected two [S={len(ap)}, B] arrays, got {ar.shape}, {br.shape}")
    n_seeds, n_boot = ar.shape
    seeds = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    reps = (ar - br)[seeds, np.arange(n_boot)[:, None]].mean(axis=1)
    used = reps[np.isfinite(reps)]
    lo, hi = np.percentile(used, [2.5, 97.5]) if len(used) else (np.nan, np.nan)
    return {
        "effect": float(np.mean(ap - bp)),
        "ci_low": float(lo),
        "ci_high": float(hi),
        "sd": float(np.std(used, ddof=1)) if len(used) > 1 else float("nan"),
        "n_seeds": int(n_seeds),
        "n_boot": int(n_boot),
        "n_boot_used": len(used),
        "higher_is_better": higher_is_better,
        "a_better": bool(lo > 0) if higher_is_better else bool(hi < 0),
    }


def spearman_replicates(x: Any, y: Any, rep_idx: Any) -> np.ndarray:
    """[B] Spearman rho of per-request values x, y [R] on each resample ``rep_idx[k]`` ([B, R]).

    Equals ``scipy.stats.spearmanr(x[rep_idx[k]], y[rep_idx[k]])`` (ties average-ranked, nan when
    a resample is constant), vectorised: x and y are sorted once; a resample only sets the
    multiplicity m_j of each request, so a copy's average rank is (copies with smaller values) +
    (copies in its tie run + 1) / 2 and rho is the m-weighted Pearson correlation of those ranks.
    O(B R) time, chunked like :class:`SortedScores`.
    """
    xs = check_scores(np.asarray(x), np.size(x), "x", probability=False)
    ys = check_scores(np.asarray(y), np.size(y), "y", probability=False)
    if len(xs) != len(ys):
        raise ValueError(f"length mismatch: x has {len(xs)} values but y has {len(ys)}")
    n_req = len(xs)
    idx = _check_idx(rep_idx, n_req, "rep_idx")
    if idx.shape[1] != n_req:
        raise ValueError(f"rep_idx: expected shape (B, {n_req}), got {idx.shape}")
    rankers = []
    for v in (xs, ys):
        order = np.argsort(v, kind="stable")
        starts = _run_starts(v[order])
        run_of = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, n_req)))
        rankers.append((order, starts, run_of))
    out = np.full(len(idx), np.nan)
    step = _chunk_rows(n_req)
    mean = (n_req + 1) / 2
    for k0 in range(0, len(idx) if n_req else 0, step):
        m = _counts(idx[k0 : k0 + step], n_req).astype(np.float64)
        dev = []
        for order, starts, run_of in rankers:
            tot = np.add.reduceat(m[:, order], starts, axis=1)
            rank_run = np.cumsum(tot, axis=1) - 0.5 * (tot - 1)
            rank = np.empty_like(m)
            rank[:, order] = rank_run[:, run_of]
            dev.append(rank - mean)
        cov = (m * dev[0] * dev[1]).sum(axis=1)
        var = (m * dev[0] ** 2).sum(axis=1) * (m * dev[1] ** 2).sum(axis=1)
        out[k0 : k0 + step] = _ratio(cov, np.sqrt(var))
    return out


def verdict(effect: float, ci_low: float, ci_high: float, oracle_gain: float, noise_sd: float,
            *, higher_is_better: bool = True) -> str:
    """"holds", "falsified" or "not testable" for the claim "A beats B" (DESIGN.md section 8).

    "not testable" when the world cannot show the effect: the oracle gain (the best improvement
    any model could get from what the mechanism targets, as a magnitude) is not finite or below
    2 x the seed noise sd, or the noise, effect or interval is unknown (nan). A null result there
    says nothing, so the verdict is to change the world, not to drop the mechanism. Otherwise
    "holds" when the 95% interval excludes 0 on A's side (ci_low > 0; ci_high < 0 with
    ``higher_is_better=False``), and "falsified" when it does not: the effect was measurable and
    was not seen.
    """
    values = (effect, ci_low, ci_high, oracle_gain, noise_sd)
    if not all(math.isfinite(v) for v in values) or oracle_gain < 2 * noise_sd:
        return "not testable"
    better = ci_low > 0 if higher_is_better else ci_high < 0
    return "holds" if better else "falsified"
