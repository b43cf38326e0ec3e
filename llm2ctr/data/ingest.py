"""``data import``: read a user's labelled pairs, validate, map labels, split, save as a pairs artifact.

The default is to refuse a file with any bad row (a model trained on silently-filtered data is a
bug that surfaces weeks later); ``on_bad_rows=skip`` imports the good rows and lists every bad one
in a rejects CSV. Either way ``kept + rejected == rows read`` and the manifest records the counts.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from llm2ctr.artifacts import atomic_write_text
from llm2ctr.config import Config
from llm2ctr.data.config import ImportConfig
from llm2ctr.data.labels import SCALES, LabelConfigError, check_label_options, parse_label_map
from llm2ctr.data.readers import FORMATS, RawData, read_source
from llm2ctr.data.splits import PAIR_METHODS, assign_pair_splits, split_counts
from llm2ctr.data.validate import Validated, issues_summary, parse_column_map, resolve_columns, validate
from llm2ctr.errors import UserError

log = logging.getLogger(__name__)

ON_BAD_ROWS = ("error", "skip")


class BadRowsError(UserError):
    """The input has bad rows and ``on_bad_rows`` is ``error``; the message lists them."""


def check_options(icfg: ImportConfig) -> None:
    """Refuse unknown option values before reading anything (a typo should not cost a 1 GB read)."""
    for name, value, allowed in (("format", icfg.format, FORMATS), ("label_scale", icfg.label_scale, SCALES),
                                 ("on_bad_rows", icfg.on_bad_rows, ON_BAD_ROWS)):
        if value not in allowed:
            raise UserError(f"data.ingest.{name}='{value}': expected one of {', '.join(allowed)}")
    if icfg.label_map:
        try:
            parse_label_map(icfg.label_map)
        except LabelConfigError as exc:
            raise UserError(f"data.ingest.label_map: {exc}") from None
    if icfg.max_text_chars <= 0:
        raise UserError(f"data.ingest.max_text_chars={icfg.max_text_chars}: expected a positive number")
    try:
        check_label_options(icfg.label_scale, icfg.continuous_bins, icfg.label_range)
    except LabelConfigError as exc:
        raise UserError(f"data.ingest.{exc}") from None


def inspect_source(icfg: ImportConfig, source: str | Path) -> tuple[RawData, dict[str, str], Validated]:
    """Read and validate ``source``; file-level problems raise, row problems come back in ``issues``."""
    check_options(icfg)
    raw = read_source(source, icfg.format, icfg.encoding)
    colmap = resolve_columns(raw, parse_column_map(icfg.column_map), icfg.auto_alias)
    renamed = {k: v for k, v in colmap.items() if k != v}
    log.info("%s: %s, %d records; columns used: %s", raw.path, raw.fmt, raw.n_records,
             ", ".join(f"{k}<-{v}" if k in renamed else k for k, v in colmap.items()))
    unused = [c for c in raw.table.column_names if c not in colmap.values()]
    if unused:
        log.info("%s: columns not imported: %s", raw.path, unused)
    try:
        checked = validate(raw, colmap, icfg)
    except LabelConfigError as exc:
        raise UserError(f"{raw.path}: {exc}") from None
    log.info("%s: labels in column '%s' read as scale '%s' (%s)", raw.path, colmap["rsl"],
             checked.label.scale, checked.label.rule)
    return raw, colmap, checked


def write_rejects(path: Path, raw: RawData, issues: pd.DataFrame) -> None:
    """The bad rows as CSV: file, row (or line), column, value, reason, detail (atomic write)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file", raw.row_word, "column", "value", "reason", "detail"])
    for rec in issues.sort_values(["row", "reason"], kind="stable").itertuples(index=False):
        w.writerow([raw.path.name, rec.row, rec.column, rec.value, rec.reason, rec.detail])
    atomic_write_text(path, buf.getvalue())


def _default_rejects(out: Path) -> Path:
    return out.with_name(f"{out.name}_rejects.csv")


def run_import(
    cfg: Config, source: str | Path, out: Path | None = None, *, dry_run: bool = False
) -> dict:
    """Import ``source`` into a pairs artifact at ``out`` (default ``{workdir}/data/pairs``).

    Returns the summary counts (rows_read, kept, rejected, rejected_by_reason, duplicates_collapsed,
    unlabelled, rows written, split sizes). ``dry_run`` validates without writing anything.
    Raises :class:`BadRowsError` (exit 2) when rows are bad and ``data.ingest.on_bad_rows`` is error.
    """
    icfg = cfg.data.ingest
    out = Path(out) if out else cfg.stage_dir("data", "pairs")
    raw, colmap, checked = inspect_source(icfg, source)
    by_reason = {str(k): int(v) for k, v in checked.issues.groupby("reason")["row"].nunique().items()}
    rejects = Path(icfg.rejects) if icfg.rejects else (None if dry_run else _default_rejects(out))
    summary = {
        "source": str(raw.path),
        "format": raw.fmt,
        "sha256": raw.sha256,
        "rows_read": checked.rows_read,
        "kept": checked.kept,
        "rejected": checked.rejected,
        "rejected_by_reason": by_reason,
        "duplicates_collapsed": checked.duplicates_collapsed,
        "unlabelled": checked.unlabelled,
        "category_defaulted": checked.category_defaulted,
        "label_scale": checked.label.scale,
        "label_rule": checked.label.rule,
        "column_map": colmap,
        "generated_columns": checked.generated,
    }
    if raw.compression:  # only then, so a plain file's summary and manifest are as before
        summary["compression"] = raw.compression
    if checked.rejected:
        if rejects is not None:
            write_rejects(rejects, raw, checked.issues)
            summary["rejects"] = str(rejects)
        if icfg.on_bad_rows == "error" or dry_run:
            tail = f"\nAll {checked.rejected} bad rows are listed in {rejects}." if rejects else ""
            if dry_run:
                advice = ("checked only (dry run)." + tail + " `data import --on-bad-rows skip` would import "
                          "the good rows and list the bad ones in a rejects file.")
            else:
                advice = ("nothing was written." + tail + " Fix the file, or pass --on-bad-rows skip to import "
                          "the good rows and list the bad ones in a rejects file (--rejects FILE).")
            raise BadRowsError(f"{issues_summary(raw, checked.issues)}\n{advice}")
        log.warning("%s: skipped %d bad rows (%s); listed in %s", raw.path, checked.rejected,
                    ", ".join(f"{k}: {v}" for k, v in by_reason.items()), rejects)
    if checked.table.num_rows == 0:
        raise UserError(f"{raw.path}: every one of the {checked.rows_read} rows was rejected; nothing to import")
    table = _finish_splits(cfg, checked)
    summary["rows"] = table.num_rows
    summary["splits"] = split_counts(table)
    if checked.kept - checked.duplicates_collapsed != table.num_rows:
        raise AssertionError("written rows != kept - duplicates_collapsed")
    if dry_run:
        return summary
    counts = {k: summary[k] for k in ("rows_read", "kept", "rejected", "duplicates_collapsed", "unlabelled",
                                      "category_defaulted")}
    counts.update({f"rejected_{k}": v for k, v in by_reason.items()})
    write_imported_pairs(table, out, cfg, summary, counts)
    summary["out"] = str(out)
    log.info("%s: imported %d pairs (read %d, rejected %d, duplicates collapsed %d) -> %s", raw.path,
             table.num_rows, checked.rows_read, checked.rejected, checked.duplicates_collapsed, out)
    return summary


def _finish_splits(cfg: Config, checked: Validated) -> pa.Table:
    """Keep the file's splits when it has them (carving valid out of train if absent), else split by query."""
    scfg = cfg.data.split
    table = checked.table
    method = scfg.method if scfg.method in PAIR_METHODS else "query"
    if not checked.has_split:
        return assign_pair_splits(table, method, scfg.valid_share, scfg.test_share, scfg.seed)
    counts = split_counts(table)
    leaked = _queries_in_several_splits(table)
    if leaked:
        log.warning("the file's split column puts %d queries in more than one split", leaked)
    if counts.get("valid", 0) == 0 and counts.get("train", 0) and scfg.valid_share > 0:
        is_train = pc.equal(table.column("split"), "train")
        train = assign_pair_splits(table.filter(is_train), method, scfg.valid_share, 0.0, scfg.seed)
        table = pa.concat_tables([train, table.filter(pc.invert(is_train))])
        log.info("the file has no valid split: moved %.0f%% of train (by %s) to valid", 100 * scfg.valid_share, method)
    return table


def _queries_in_several_splits(table: pa.Table) -> int:
    grouped = table.group_by("query").aggregate([("split", "count_distinct")])
    return int(pc.sum(pc.greater(grouped.column("split_count_distinct"), 1)).as_py() or 0)


def write_imported_pairs(table: pa.Table, out: Path, cfg: Config, summary: dict, counts: dict[str, int]) -> None:
    from llm2ctr.data.store import save_table

    save_table(
        table, out, kind="pairs", stage="data.import",
        config={"ingest": dataclasses.asdict(cfg.data.ingest), "split": dataclasses.asdict(cfg.data.split),
                "seed": cfg.seed},
        counts=counts,
        source={"path": summary["source"], "format": summary["format"], "sha256": summary["sha256"],
                **({"compression": summary["compression"]} if "compression" in summary else {})},
        rejected_by_reason=summary["rejected_by_reason"],
        label={"column": summary["column_map"]["rsl"], "scale": summary["label_scale"],
               "rule": summary["label_rule"]},
        column_map=summary["column_map"],
        splits=summary["splits"],
    )
