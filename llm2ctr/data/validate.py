"""Validate an imported pairs file row by row, vectorised, and say exactly what is wrong where.

Every check is a column-wide Arrow/numpy operation that yields a mask; only the bad rows are
turned into Python values for the report. A row can fail several checks; it is counted once in
``rejected`` and listed once per problem in the rejects file. Rows that pass every check but repeat
an earlier row exactly are collapsed and counted, never dropped silently.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from llm2ctr.data.config import ImportConfig
from llm2ctr.data.labels import LabelResult, expectation, map_labels, parse_label_map, split_assignments
from llm2ctr.data.readers import InputError, RawData
from llm2ctr.data.schema import SPLITS

CANONICAL = ("pair_id", "query", "item_id", "item_text", "rsl", "category", "split")
REQUIRED = ("query", "item_text", "rsl")
# Column names of well-known public relevance data sets, tried when ours are absent (logged).
ALIASES = {
    "query": ("search_term", "query_text", "search_query", "keyword"),
    "item_text": ("product_title", "title", "item_title", "product_name", "document", "text"),
    "rsl": ("relevance", "esci_label", "label", "grade", "relevance_label"),
    "item_id": ("product_id", "product_uid", "asin", "doc_id"),
    "pair_id": ("example_id", "id"),
    "category": ("product_category", "query_category"),
}
SPLIT_SYNONYMS = {"validation": "valid", "val": "valid", "dev": "valid", "eval": "valid"}
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"

# Row-level problems: code -> what was expected (the message of each issue adds specifics).
REASONS = {
    "wrong_field_count": "a CSV/TSV row whose number of fields differs from the header's",
    "bad_json": "a JSON Lines line that is not valid JSON",
    "not_object": "a JSON Lines line that is valid JSON but not an object",
    "not_text": "a list/object where text or an id was expected",
    "empty_text": "empty, blank or missing query / item text",
    "text_too_long": "text longer than data.ingest.max_text_chars",
    "control_chars": "text with NUL or other control characters (binary or mis-encoded data)",
    "replacement_char": "text with U+FFFD (characters already lost to a wrong decode upstream)",
    "label_unparsable": "a label that is not a number (or not an ESCI letter/word in ESCI mode)",
    "label_nan": "a label that is NaN",
    "label_out_of_range": "a label outside the scale's range (or infinite)",
    "label_not_integer": "a fractional label on an integer scale",
    "label_not_in_map": "a label value the label map does not list",
    "empty_id": "an empty pair_id or item_id in a column that has ids",
    "duplicate_id": "a pair_id used earlier for a different query/item/label",
    "conflicting_label": "the same query and item text labelled differently earlier",
    "item_id_conflict": "an item_id used earlier with a different item text",
    "bad_split": "a split value other than train/valid/test",
}


def parse_column_map(spec: str | dict[str, str]) -> dict[str, str]:
    """``'query=search_term,rsl=relevance'`` -> ``{'query': 'search_term', 'rsl': 'relevance'}``."""
    if isinstance(spec, dict):
        items = list(spec.items())
    else:
        items = split_assignments(spec, lambda part: InputError(
            f"--map entry '{part}' is not of the form OURS=THEIRS (e.g. query=search_term,rsl=relevance)"))
    out: dict[str, str] = {}
    for k, v in items:
        k, v = str(k).strip(), str(v).strip()
        if k not in CANONICAL:
            close = difflib.get_close_matches(k, CANONICAL, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise InputError(f"--map '{k}={v}': '{k}' is not one of our columns {list(CANONICAL)}.{hint}")
        out[k] = v
    return out


def resolve_columns(raw: RawData, column_map: dict[str, str], auto_alias: bool = True) -> dict[str, str]:
    """Our column name -> the file's column name, from the map, exact names, then known aliases."""
    present = raw.table.column_names
    out: dict[str, str] = {}
    for ours, theirs in column_map.items():
        if theirs not in present:
            close = difflib.get_close_matches(theirs, present, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise InputError(
                f"{raw.path}: --map {ours}={theirs}: the file has no column '{theirs}'.{hint} "
                f"Columns present: {present}"
            )
        out[ours] = theirs
    for ours in CANONICAL:
        if ours in out:
            continue
        if ours in present and ours not in out.values():
            out[ours] = ours
        elif auto_alias:
            alias = next((a for a in ALIASES.get(ours, ()) if a in present and a not in out.values()), None)
            if alias:
                out[ours] = alias
    missing = [c for c in REQUIRED if c not in out]
    if missing:
        raise InputError(
            f"{raw.path}: missing required column(s) {missing}; columns present: {present}. "
            f"Map your columns with --map, e.g. --map {missing[0]}=<your column> (or data.ingest.column_map)"
        )
    return out


@dataclass
class Validated:
    """The rows that passed, in canonical columns, plus every problem found and the counts."""

    table: pa.Table  # pair_id, query, item_id, item_text, rsl, category, split ("" = unassigned)
    rows: np.ndarray  # file position of each kept (deduplicated) row
    issues: pd.DataFrame  # row, column, value, reason, detail
    rows_read: int
    kept: int  # rows that passed (before collapsing duplicates)
    rejected: int
    duplicates_collapsed: int
    unlabelled: int
    category_defaulted: int
    has_split: bool
    label: LabelResult
    generated: list[str] = field(default_factory=list)


def _show(value: object) -> str:
    return "<null>" if value is None else str(value)[:200]


class _Issues:
    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows
        self.parts: list[pd.DataFrame] = []

    def add(self, mask: np.ndarray, column: str, values: pa.Array | pa.ChunkedArray | None,
            reason: str, detail: str | list[str]) -> None:
        idx = np.flatnonzero(mask) if mask.dtype == bool else mask
        if idx.size == 0:
            return
        vals = [_show(v) for v in values.take(pa.array(idx)).to_pylist()] if values is not None else ""
        self.parts.append(pd.DataFrame(
            {"row": self.rows[idx], "column": column, "value": vals, "reason": reason, "detail": detail}
        ))


def _strings(raw: RawData, name: str, issues: _Issues) -> tuple[pa.Array, np.ndarray]:
    """The column as strings; list/object cells are flagged ``not_text`` and become null."""
    col = raw.table.column(name)
    bad = np.zeros(raw.table.num_rows, dtype=bool)
    if name in raw.nested:
        bad[raw.nested[name]] = True
        shown = pa.array([None if v is None else str(v) for v in col.to_pylist()], type=pa.string()) \
            if pa.types.is_nested(col.type) else col
        issues.add(bad, name, shown, "not_text", "expected a string or number, got a list/object")
    if pa.types.is_nested(col.type):
        return pa.nulls(len(col), pa.string()), bad
    arr = pc.cast(col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col, pa.string())
    if bad.any():
        arr = pc.if_else(pa.array(bad), pa.scalar(None, pa.string()), arr)
    return arr, bad


def _mask(arr: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _take(arr: pa.Array, idx: np.ndarray, n: int) -> pa.Array:
    """``arr[idx]``, skipping the copy when ``idx`` is every row in order (the common, clean case)."""
    return arr if len(idx) == n else pc.take(arr, pa.array(idx))


def _first_of_key(keys: pa.Array) -> np.ndarray:
    """For each row, the index of the first row with the same key (O(n log n), no Python loop)."""
    codes = pc.dictionary_encode(keys).indices.to_numpy(zero_copy_only=False)
    _, first_of_code = np.unique(codes, return_index=True)
    return first_of_code[codes]


def stable_ids(prefix: str, *parts: list[str]) -> list[str]:
    """Content ids that never change across library versions (blake2b of the text, 16 hex chars)."""
    joined = ["\x1f".join(p) for p in zip(*parts, strict=True)] if len(parts) > 1 else parts[0]
    return [prefix + hashlib.blake2b(s.encode("utf-8"), digest_size=8).hexdigest() for s in joined]


def validate(raw: RawData, colmap: dict[str, str], icfg: ImportConfig) -> Validated:
    """Run every row check over ``raw`` (columns per ``colmap``) and collapse exact duplicates."""
    n = raw.table.num_rows
    issues = _Issues(raw.rows)
    bad = np.zeros(n, dtype=bool)
    cols: dict[str, pa.Array] = {}
    for ours in ("query", "item_text", "pair_id", "item_id", "category", "split"):
        if ours in colmap:
            cols[ours], nested = _strings(raw, colmap[ours], issues)
            bad |= nested
    for ours in ("query", "item_text"):
        name, arr = colmap[ours], cols[ours]
        empty = _mask(pc.fill_null(pc.equal(pc.utf8_trim_whitespace(arr), ""), True)) & ~bad
        issues.add(empty, name, arr, "empty_text", f"empty or missing {ours}; expected non-empty text")
        lengths = pc.fill_null(pc.utf8_length(arr), 0).to_numpy(zero_copy_only=False)
        long = lengths > icfg.max_text_chars
        issues.add(long, name, arr, "text_too_long",
                   [f"{k} characters; expected at most {icfg.max_text_chars} (data.ingest.max_text_chars)"
                    for k in lengths[long]])
        ctrl = _mask(pc.match_substring_regex(arr, _CONTROL))
        issues.add(ctrl, name, arr, "control_chars",
                   "contains NUL or other control characters; expected plain text (binary or mis-encoded data?)")
        repl = _mask(pc.match_substring(arr, "\ufffd"))
        issues.add(repl, name, arr, "replacement_char",
                   "contains U+FFFD: characters were lost to a wrong decode before this file was written")
        bad |= empty | long | ctrl | repl
    for ours in ("pair_id", "item_id"):
        if ours in cols:
            arr = cols[ours]
            empty = _mask(pc.fill_null(pc.equal(pc.utf8_trim_whitespace(arr), ""), True)) & ~bad
            issues.add(empty, colmap[ours], arr, "empty_id", f"empty {ours}; expected an id in every row")
            bad |= empty
            cols[ours] = pc.utf8_trim_whitespace(arr)
    if "split" in cols:
        arr = cols["split"]
        norm = pd.Series(pc.utf8_lower(pc.utf8_trim_whitespace(arr)).to_pandas(), dtype=object).replace(SPLIT_SYNONYMS)
        wrong = ~norm.isin(SPLITS).to_numpy()
        issues.add(wrong & ~bad, colmap["split"], arr, "bad_split",
                   f"expected one of {', '.join(SPLITS)} (or validation/val/dev for valid)")
        bad |= wrong
        cols["split"] = pa.array(norm.where(~wrong, "").to_numpy(dtype=object), type=pa.string())

    label_map = parse_label_map(icfg.label_map) if icfg.label_map else None
    lab = map_labels(raw.table.column(colmap["rsl"]).combine_chunks(), icfg.label_scale, label_map,
                     icfg.continuous_bins, icfg.label_range)
    expect = expectation(lab.scale, lab.value_range, label_map)
    raw_labels = raw.table.column(colmap["rsl"])
    label_text = {
        "label_nan": "label is NaN; expected a value (leave the cell empty for an unlabelled pair)",
        "label_unparsable": f"cannot read a label from this value; expected {expect}",
        "label_out_of_range": f"label outside the scale; expected {expect}",
        "label_not_integer": f"fractional label on an integer scale; expected {expect} "
        "(or --label-scale continuous with data.ingest.continuous_bins)",
        "label_not_in_map": f"value missing from the label map; expected {expect}",
    }
    for reason, mask in lab.problems.items():
        issues.add(mask, colmap["rsl"], raw_labels, reason, label_text[reason])
        bad |= mask

    good = np.flatnonzero(~bad)
    query, item_text = _take(cols["query"], good, n), _take(cols["item_text"], good, n)
    rsl_good = lab.rsl[good]
    generated = []
    if "pair_id" in cols:
        pair_id = _take(cols["pair_id"], good, n)
    else:
        pair_id = pa.array(stable_ids("p", query.to_pylist(), item_text.to_pylist()), type=pa.string())
        generated.append("pair_id")
    first = _first_of_key(pair_id)  # position of the first row with the same pair_id
    repeated = first != np.arange(len(good))
    same = np.ones(len(good), dtype=bool)
    if repeated.any():  # compare each repeated row with the first row of its key
        rep = np.flatnonzero(repeated)
        rtake, ftake = pa.array(rep), pa.array(first[rep])
        same[rep] = (
            _mask(pc.equal(pc.take(query, rtake), pc.take(query, ftake)))
            & _mask(pc.equal(pc.take(item_text, rtake), pc.take(item_text, ftake)))
            & (rsl_good[rep] == rsl_good[first[rep]])
        )
    exact = repeated & same
    clash = repeated & ~same
    if clash.any():
        ix = np.flatnonzero(clash)
        earlier = raw.rows[good[first[ix]]]
        if "pair_id" in cols:
            issues.add(good[ix], colmap["pair_id"], cols["pair_id"], "duplicate_id",
                       [f"pair_id already used at {raw.row_word} {r} with a different query/item text/label; "
                        "expected unique ids" for r in earlier])
        else:
            issues.add(good[ix], colmap["rsl"], raw_labels, "conflicting_label",
                       [f"the same query and item text are labelled differently at {raw.row_word} {r}; "
                        "expected one label per pair (the earlier row is kept)" for r in earlier])
    conflict = np.zeros(len(good), dtype=bool)
    if "item_id" in cols:
        item_id = _take(cols["item_id"], good, n)
        cand = np.flatnonzero(~clash)
        sub_text = _take(item_text, cand, len(good))
        first_in = _first_of_key(_take(item_id, cand, len(good)))
        differs = first_in != np.arange(len(cand))
        first_text = sub_text
        if differs.any():
            first_text = pc.take(sub_text, pa.array(first_in))
            differs &= ~_mask(pc.equal(sub_text, first_text))
        conflict[cand] = differs
        if differs.any():
            shown = first_text.filter(pa.array(differs)).to_pylist()
            issues.add(good[conflict], colmap["item_id"], cols["item_id"], "item_id_conflict",
                       [f"item_id already used with item text {t[:60]!r}; expected one text per item_id"
                        for t in shown])
    keep = ~exact & ~clash & ~conflict
    exact &= ~conflict
    if "item_id" not in cols:
        item_id = None

    issue_df = pd.concat(
        [pd.DataFrame(raw.issues, columns=["row", "column", "value", "reason", "detail"])] + issues.parts,
        ignore_index=True,
    ) if (raw.issues or issues.parts) else pd.DataFrame(columns=["row", "column", "value", "reason", "detail"])
    issue_df["row"] = issue_df["row"].astype(np.int64)
    rejected = int(issue_df["row"].nunique())
    n_exact = int(exact.sum())
    kept = int(keep.sum()) + n_exact
    if kept + rejected != raw.n_records:
        raise AssertionError(f"row accounting broken: kept {kept} + rejected {rejected} != read {raw.n_records}")

    k = good[keep]
    kpos = np.flatnonzero(keep)
    kept_text = _take(item_text, kpos, len(good))
    if item_id is None:
        item_ids = pa.array(stable_ids("i", kept_text.to_pylist()), type=pa.string())
        generated.append("item_id")
    else:
        item_ids = _take(item_id, kpos, len(good))
    if "category" in cols:
        cat = pc.utf8_trim_whitespace(_take(cols["category"], k, n))
        empty_cat = _mask(pc.fill_null(pc.equal(cat, ""), True))
        category = pc.if_else(pa.array(empty_cat), icfg.default_category, cat)
    else:
        empty_cat = np.ones(len(k), dtype=bool)
        category = pa.array([icfg.default_category] * len(k), type=pa.string())
    split = _take(cols["split"], k, n) if "split" in cols else pa.array([""] * len(k), type=pa.string())
    rsl = lab.rsl[k]
    table = pa.table({
        "pair_id": _take(pair_id, kpos, len(good)),
        "query": _take(query, kpos, len(good)),
        "item_id": item_ids,
        "item_text": kept_text,
        "rsl": pa.array(rsl, type=pa.int8(), mask=rsl == 0),
        "category": category,
        "split": split,
    })
    return Validated(
        table=table, rows=raw.rows[k], issues=issue_df, rows_read=raw.n_records, kept=kept,
        rejected=rejected, duplicates_collapsed=n_exact, unlabelled=int((rsl == 0).sum()),
        category_defaulted=int(empty_cat.sum()), has_split="split" in cols, label=lab, generated=generated,
    )


def row_note(raw: RawData) -> str:
    if raw.row_word == "line":
        return "line = line number in the file"
    if raw.fmt in ("csv", "tsv"):
        return "row = 1-based data row; the header and blank lines are not counted"
    return "row = 1-based row of the table"


def issues_summary(raw: RawData, issues: pd.DataFrame, examples: int = 5) -> str:
    """Count per reason plus the first ``examples`` of each, every one naming file, row, column, value."""
    if issues.empty:
        return f"{raw.path}: no bad rows"
    n_bad = issues["row"].nunique()
    lines = [f"{raw.path}: {n_bad} of {raw.n_records} rows are bad ({row_note(raw)}):"]
    for reason, grp in issues.groupby("reason", sort=False):
        lines.append(f"  {reason}: {grp['row'].nunique()} rows")
        for rec in grp.sort_values("row").head(examples).itertuples(index=False):
            where = f"{raw.path.name} {raw.row_word} {rec.row}"
            col = f", column '{rec.column}'" if rec.column else ""
            lines.append(f"    {where}{col}, value {str(rec.value)[:80]!r}: {rec.detail}")
    return "\n".join(lines)
