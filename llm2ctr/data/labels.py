"""Map a user's relevance labels onto our four levels (rsl 1..4: irrelevant .. exact).

Real data sets grade relevance on different scales (Amazon ESCI letters, Home Depot's 1-3
averages, 0..3 integer grades). Each scale has one documented rule (docs/data-import.md) so the
same file always gives the same labels, and ``auto`` says in the log which rule it picked and why.
Per-row problems come back as masks, never exceptions, so the caller can report every bad row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

log = logging.getLogger(__name__)

SCALES = ("auto", "int", "continuous", "esci", "map")

# ESCI: Exact / Substitute / Complement / Irrelevant -> 4 / 3 / 2 / 1 (letters or whole words).
ESCI = {
    "e": 4, "exact": 4,
    "s": 3, "substitute": 3,
    "c": 2, "complement": 2,
    "i": 1, "irrelevant": 1,
}
_NAN_WORDS = {"nan", "-nan", "+nan"}
# auto: numbers are a continuous scale when at least this share of them is fractional
CONTINUOUS_SHARE = 0.05
# a continuous scale without data.ingest.label_range: Home Depot's 1-3 averages, what the default bins cut
CONTINUOUS_RANGE = (1.0, 3.0)
DEFAULT_BINS = (1.5, 2.0, 2.5)


class LabelConfigError(ValueError):
    """The label options themselves are wrong (not a per-row problem)."""


@dataclass
class LabelResult:
    """rsl per row (int8, 0 = no label) plus a boolean mask per problem found."""

    rsl: np.ndarray
    unlabelled: np.ndarray
    problems: dict[str, np.ndarray] = field(default_factory=dict)
    scale: str = ""
    rule: str = ""  # one line for logs/manifests: what was done to the values
    value_range: list[float] = field(default_factory=list)  # the int/continuous range checked


def split_assignments(
    spec: str, error: Callable[[str], Exception], from_right: bool = False
) -> list[tuple[str, str]]:
    """``'a=1,b=2'`` -> ``[('a', '1'), ('b', '2')]`` (stripped); ``error(part)`` for a part without '='.

    ``from_right`` splits at the last '=' (a value may contain '='), else at the first.
    """
    items = []
    for part in (p for p in spec.split(",") if p.strip()):
        if "=" not in part:
            raise error(part)
        k, v = part.rsplit("=", 1) if from_right else part.split("=", 1)
        items.append((k.strip(), v.strip()))
    return items


def parse_label_map(spec: str | dict) -> dict[str, int]:
    """``'E=4,S=3'`` or a mapping -> ``{raw value: level}``; levels must be 1..4."""
    if isinstance(spec, dict):
        items = [(str(k), v) for k, v in spec.items()]
    else:
        items = split_assignments(
            spec, lambda part: LabelConfigError(
                f"label map entry '{part}' is not of the form VALUE=LEVEL (e.g. 'E=4,S=3,C=2,I=1')"),
            from_right=True,
        )
    out: dict[str, int] = {}
    for k, v in items:
        try:
            level = int(v)
        except (TypeError, ValueError):
            level = -1
        if level not in (1, 2, 3, 4) or str(v).strip() not in ("1", "2", "3", "4"):
            raise LabelConfigError(f"label map entry '{k}={v}': the level must be an integer 1..4")
        out[_key(k)] = level
    if not out:
        raise LabelConfigError("label map is empty; expected entries like 'E=4,S=3,C=2,I=1'")
    return out


def _key(value: str) -> str:
    """Map keys compare on stripped text; integral numbers match '2', '2.0' and 2 alike."""
    s = str(value).strip()
    try:
        f = float(s)
    except ValueError:
        return s
    return str(int(f)) if np.isfinite(f) and f.is_integer() else s


def _as_strings_and_numbers(values: pa.Array) -> tuple[pd.Series, np.ndarray, np.ndarray, np.ndarray]:
    """(stripped strings, numeric value or NaN, missing mask, explicit-NaN mask), all vectorised."""
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type) or pa.types.is_boolean(values.type):
        num = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
        missing = pc.is_null(values).to_numpy(zero_copy_only=False)
        is_nan = np.isnan(num) & ~missing
        num = np.where(missing, np.nan, num)
        text = pd.Series(pc.cast(values, pa.string()).to_pylist(), dtype=object).fillna("")
        return text, num, missing, is_nan
    strs = pc.utf8_trim_whitespace(pc.cast(values, pa.string()))
    missing = pc.fill_null(pc.equal(strs, ""), True).to_numpy(zero_copy_only=False)
    text = pd.Series(strs.to_pandas(), dtype=object).fillna("")
    lower = text.str.lower()
    is_nan = lower.isin(_NAN_WORDS).to_numpy()
    num = pd.to_numeric(text.where(~is_nan & ~missing, None), errors="coerce").to_numpy(dtype=np.float64)
    return text, num, missing, is_nan


def detect_scale(text: pd.Series, num: np.ndarray, valid: np.ndarray) -> str:
    """``esci`` if most labels are ESCI letters/words, ``continuous`` if >= 5% of numbers are fractional, else ``int``."""
    n = int(valid.sum())
    if n == 0:
        return "int"
    n_num = int((~np.isnan(num) & valid).sum())
    n_esci = int((text.str.lower().isin(ESCI.keys()).to_numpy() & valid).sum())
    if n_esci > n_num:
        return "esci"
    vals = num[~np.isnan(num) & valid]
    finite = vals[np.isfinite(vals)]
    # A few fractional values in an integer file are typos to report, not a different scale.
    if finite.size and np.mean(finite != np.round(finite)) >= CONTINUOUS_SHARE:
        return "continuous"
    return "int"


def int_range(num: np.ndarray, ok: np.ndarray, label_range: list[float]) -> tuple[int, int]:
    """The integer scale: ``label_range`` if given, 0..3 if the data look like it, else 1..4."""
    if label_range:
        return int(label_range[0]), int(label_range[1])
    vals = num[ok & np.isfinite(num)]
    if vals.size and vals.min() == 0 and vals.max() <= 3:
        return 0, 3
    return 1, 4


def check_label_options(
    scale: str, bins: list[float] | None = None, label_range: list[float] | None = None
) -> tuple[list[float], list[float]]:
    """Check the label options before any row is read; ``(bins, label_range)`` with defaults filled.

    The continuous range only gets its default, and is only checked against the bins, once the
    scale is known to be continuous: an integer scale's range need not contain the bins.
    """
    if scale not in SCALES:
        raise LabelConfigError(f"unknown label scale '{scale}'; expected one of {', '.join(SCALES)}")
    bins = [float(b) for b in (bins if bins is not None else DEFAULT_BINS)]
    if len(bins) != 3 or sorted(bins) != bins:
        raise LabelConfigError(f"continuous_bins must be 3 increasing numbers, got {bins}")
    label_range = list(label_range or [])
    if label_range and (len(label_range) != 2 or not label_range[0] < label_range[1]):
        raise LabelConfigError(f"label_range must be [low, high] with low < high, got {label_range}")
    if scale == "continuous":
        label_range = continuous_range(bins, label_range)
    return bins, label_range


def continuous_range(bins: list[float], label_range: list[float]) -> list[float]:
    """The continuous scale's [low, high] (default 1..3); a bin edge outside it is a config error.

    An edge outside the range would leave a level no valid value can reach, which is a sign the
    bins were written for another scale.
    """
    given = bool(label_range)
    low, high = (float(v) for v in (label_range if given else CONTINUOUS_RANGE))
    outside = [b for b in bins if not low <= b <= high]
    if outside:
        which = "label_range" if given else "the default continuous range (set data.ingest.label_range)"
        raise LabelConfigError(
            f"continuous_bins {bins} do not fit {which} [{low:g}, {high:g}]: bin edge(s) {outside} lie "
            "outside it; every edge must be within [low, high]. Set label_range to the scale your labels "
            "use (e.g. data.ingest.label_range=[0,1] or --label-range 0,1) and bins inside it"
        )
    return [low, high]


def map_labels(
    values: pa.Array,
    scale: str = "auto",
    label_map: dict[str, int] | None = None,
    bins: list[float] | None = None,
    label_range: list[float] | None = None,
) -> LabelResult:
    """Turn raw label values into rsl 1..4; empty values are unlabelled (rsl null), not errors."""
    bins, label_range = check_label_options(scale, bins, label_range)
    text, num, missing, is_nan = _as_strings_and_numbers(values)
    n = len(text)
    rsl = np.zeros(n, dtype=np.int8)
    problems: dict[str, np.ndarray] = {"label_nan": is_nan.copy()}
    present = ~missing & ~is_nan
    if scale == "auto":
        scale = "map" if label_map else detect_scale(text, num, present)
    if scale == "map":
        if not label_map:
            raise LabelConfigError("label scale 'map' needs a label map (--label-map 'E=4,S=3,C=2,I=1')")
        keys = text.map(_key)
        mapped = keys.map(label_map)
        found = mapped.notna().to_numpy() & present
        rsl[found] = mapped[found].astype(np.int8).to_numpy()
        problems["label_not_in_map"] = present & ~found
        rule = f"explicit map {label_map}"
    elif scale == "esci":
        mapped = text.str.lower().map(ESCI)
        found = mapped.notna().to_numpy() & present
        rsl[found] = mapped[found].astype(np.int8).to_numpy()
        problems["label_unparsable"] = present & ~found
        rule = "ESCI letters/words: E/Exact=4, S/Substitute=3, C/Complement=2, I/Irrelevant=1"
    else:
        parsed = present & ~np.isnan(num)
        problems["label_unparsable"] = present & np.isnan(num)
        if scale == "int":
            whole = parsed & np.isfinite(num) & (num == np.round(num))
            lo, hi = int_range(num, whole, label_range)
            in_range = whole & (num >= lo) & (num <= hi)
            label_range = [lo, hi]
            problems["label_not_integer"] = parsed & np.isfinite(num) & ~whole
            problems["label_out_of_range"] = (parsed & ~np.isfinite(num)) | (whole & ~in_range)
            if (lo, hi) == (1, 4):
                rsl[in_range] = num[in_range].astype(np.int8)
                rule = "integers 1..4 kept as they are"
            else:
                scaled = 1 + np.floor((num[in_range] - lo) * 3.0 / (hi - lo) + 0.5)  # halves round up
                rsl[in_range] = scaled.astype(np.int8)
                rule = f"integers {lo}..{hi} rescaled linearly to 1..4: rsl = 1 + round_half_up((v - {lo}) * 3 / {hi - lo})"
        else:  # continuous: values outside the range are bad rows, never binned into 1 or 4
            label_range = continuous_range(bins, label_range)
            low, high = label_range
            ok = parsed & np.isfinite(num) & (num >= low) & (num <= high)
            problems["label_out_of_range"] = parsed & ~ok
            rsl[ok] = (np.searchsorted(np.asarray(bins), num[ok], side="right") + 1).astype(np.int8)
            rule = (f"continuous values in [{low:g}, {high:g}] binned: < {bins[0]} -> 1, < {bins[1]} -> 2, "
                    f"< {bins[2]} -> 3, else 4")
    return LabelResult(
        rsl=rsl,
        unlabelled=missing,
        problems={k: v for k, v in problems.items() if v.any()},
        scale=scale,
        rule=rule,
        value_range=label_range,
    )


def expectation(scale: str, label_range: list[float] | None, label_map: dict[str, int] | None) -> str:
    """What a valid label looks like under ``scale`` (used in error messages)."""
    if scale == "esci":
        return "one of E, S, C, I (or Exact, Substitute, Complement, Irrelevant)"
    if scale == "map":
        return f"one of the label map's values {sorted((label_map or {}).keys())}"
    if scale == "continuous":
        low, high = label_range or CONTINUOUS_RANGE
        return (f"a number in [{low:g}, {high:g}] (for another range: --label-range LOW,HIGH or "
                "data.ingest.label_range=[low,high])")
    lo, hi = (int(label_range[0]), int(label_range[1])) if label_range else (1, 4)
    return f"an integer {lo}..{hi} (for another scale: --label-scale int data.ingest.label_range=[low,high])"
