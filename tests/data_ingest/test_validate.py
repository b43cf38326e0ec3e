"""Row checks: each bad-row kind is reported with file, row, column and value; skip mode accounts for every row."""

from __future__ import annotations

import csv

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llm2ctr.artifacts import read_manifest
from llm2ctr.cli.common import UserError
from llm2ctr.data.ingest import BadRowsError, run_import
from llm2ctr.data.store import load_pairs

HEADER = ["pair_id", "query", "item_id", "item_text", "rsl", "split"]


def base(n=8):
    return [[f"p{i}", f"query {i}", f"it{i}", f"item text {i}", (i % 4) + 1, "train"] for i in range(n)]


# (reason, row to plant (0-based index into base()), column, replacement value, expected message part)
CASES = [
    ("empty_text", 2, "query", "   ", "expected non-empty text"),
    ("text_too_long", 2, "item_text", "x" * 51, "51 characters; expected at most 50"),
    ("control_chars", 3, "query", "bad\x00query", "control characters"),
    ("replacement_char", 3, "item_text", "caf\ufffd", "U+FFFD"),
    ("label_unparsable", 4, "rsl", "four", "expected an integer 1..4"),
    ("label_nan", 4, "rsl", "NaN", "label is NaN"),
    ("label_out_of_range", 5, "rsl", "7", "outside the scale"),
    ("label_not_integer", 5, "rsl", "2.5", "fractional label"),
    ("empty_id", 6, "pair_id", "", "empty pair_id"),
    ("duplicate_id", 6, "pair_id", "p1", "already used at row 2"),
    ("item_id_conflict", 7, "item_id", "it0", "already used with item text 'item text 0'"),
    ("bad_split", 7, "split", "holdout", "expected one of train, valid, test"),
]


@pytest.mark.parametrize("reason, idx, column, value, detail", CASES, ids=[c[0] for c in CASES])
def test_each_bad_row_kind_names_file_row_column_value(tmp_path, cfg, csv_writer, reason, idx, column, value,
                                                       detail):
    rows = base() + [[f"p{i}", f"q{i}", f"it{i}", f"t{i}", 3, "train"] for i in range(8, 40)]
    rows[idx][HEADER.index(column)] = value
    src = csv_writer(tmp_path / "in.csv", HEADER, rows)
    cfg.data.ingest.max_text_chars = 50
    with pytest.raises(BadRowsError) as err:
        run_import(cfg, src)
    msg = str(err.value)
    assert f"{reason}: 1 rows" in msg, msg
    shown = repr(value[:80])
    assert f"in.csv row {idx + 1}, column '{column}', value {shown}" in msg, msg
    assert detail in msg, msg
    assert "nothing was written" in msg and "--on-bad-rows skip" in msg
    assert not (tmp_path / "work" / "data" / "pairs").exists()
    # the rejects file lists the row with the same facts
    with open(tmp_path / "work" / "data" / "pairs_rejects.csv", newline="") as fh:
        recs = list(csv.DictReader(fh))
    assert [(r["row"], r["column"], r["reason"]) for r in recs] == [(str(idx + 1), column, reason)]


def test_conflicting_label_without_pair_ids(tmp_path, cfg, csv_writer):
    src = csv_writer(tmp_path / "c.csv", ["query", "item_text", "rsl"],
                     [["q", "a", 4], ["q", "b", 2], ["q", "a", 1], ["q", "a", 4]])
    with pytest.raises(BadRowsError) as err:
        run_import(cfg, src)
    msg = str(err.value)
    assert "conflicting_label: 1 rows" in msg
    assert "c.csv row 3, column 'rsl', value '1': the same query and item text are labelled differently at row 1" in msg


def test_skip_mode_accounts_for_every_row(tmp_path, cfg, csv_writer):
    rows = base(8) + [["p0", "query 0", "it0", "item text 0", 2, "train"],  # duplicate_id (label differs)
                      ["p2", "query 2", "it2", "item text 2", 3, "train"],  # exact duplicate of row 3
                      ["p9", "", "it9", "t", "zz", "train"]]  # empty text + unparsable label: one row, two issues
    src = csv_writer(tmp_path / "s.csv", HEADER, rows)
    cfg.data.ingest.on_bad_rows = "skip"
    cfg.data.ingest.rejects = str(tmp_path / "bad.csv")
    s = run_import(cfg, src)
    assert s["rows_read"] == 11 and s["rejected"] == 2 and s["kept"] == 9
    assert s["kept"] + s["rejected"] == s["rows_read"]
    assert s["duplicates_collapsed"] == 1 and s["rows"] == 8
    assert s["rejected_by_reason"] == {"duplicate_id": 1, "empty_text": 1, "label_unparsable": 1}
    m = read_manifest(s["out"], "pairs")
    assert m["counts"]["rows_read"] == 11 and m["counts"]["rejected_duplicate_id"] == 1
    assert m["source"]["sha256"] == s["sha256"] and m["source"]["path"].endswith("s.csv")
    with open(tmp_path / "bad.csv", newline="") as fh:
        recs = list(csv.DictReader(fh))
    assert sorted((r["row"], r["reason"]) for r in recs) == [
        ("11", "empty_text"), ("11", "label_unparsable"), ("9", "duplicate_id")]
    assert load_pairs(s["out"]).num_rows == 8


def test_unlabelled_rows_are_kept_and_counted(tmp_path, cfg, csv_writer):
    src = csv_writer(tmp_path / "u.csv", ["query", "item_text", "rsl"], [["a", "b", 4], ["a", "c", ""]])
    s = run_import(cfg, src)
    assert s["unlabelled"] == 1
    assert load_pairs(s["out"]).column("rsl").to_pylist() == [4, None]


def test_nested_values_in_parquet_are_not_text(tmp_path, cfg):
    pq.write_table(pa.table({"query": pa.array([["a"], None, ["c"]], pa.list_(pa.string())),
                             "item_text": ["x", "y", "z"], "rsl": [1, 2, 3]}), tmp_path / "n.parquet")
    with pytest.raises(BadRowsError) as err:
        run_import(cfg, tmp_path / "n.parquet")
    msg = str(err.value)
    assert "not_text: 2 rows" in msg and "n.parquet row 1, column 'query', value \"['a']\"" in msg
    assert "empty_text: 1 rows" in msg and "n.parquet row 2, column 'query'" in msg


def test_label_not_in_map(tmp_path, cfg, csv_writer):
    src = csv_writer(tmp_path / "m.csv", ["query", "item_text", "grade"], [["a", "b", "good"], ["a", "c", "so-so"]])
    cfg.data.ingest.column_map = {"rsl": "grade"}
    cfg.data.ingest.label_map = {"good": 4, "bad": 1}
    with pytest.raises(BadRowsError) as err:
        run_import(cfg, src)
    assert "m.csv row 2, column 'grade', value 'so-so': value missing from the label map" in str(err.value)


def test_missing_column_and_bad_maps(tmp_path, cfg, csv_writer):
    src = csv_writer(tmp_path / "cols.csv", ["search", "title", "score_x"], [["a", "b", 4]])
    with pytest.raises(UserError) as err:
        run_import(cfg, src)
    msg = str(err.value)
    assert "cols.csv: missing required column(s) ['query', 'rsl']" in msg  # 'title' is a known alias
    assert "columns present: ['search', 'title', 'score_x']" in msg and "--map query=" in msg
    cfg.data.ingest.column_map = {"query": "serch", "item_text": "title", "rsl": "score_x"}
    with pytest.raises(UserError, match=r"cols.csv: --map query=serch: the file has no column 'serch'. "
                                        r"Did you mean 'search'\?"):
        run_import(cfg, src)
    cfg.data.ingest.column_map = {"qury": "search"}
    with pytest.raises(UserError, match="'qury' is not one of our columns.*Did you mean 'query'"):
        run_import(cfg, src)


def test_option_errors(tmp_path, cfg, csv_writer):
    src = csv_writer(tmp_path / "o.csv", ["query", "item_text", "rsl"], [["a", "b", 4]])
    for key, value, msg in [("on_bad_rows", "ignore", "on_bad_rows='ignore'"),
                            ("label_scale", "stars", "label_scale='stars'"),
                            ("label_map", {"E": 7}, "level must be an integer 1..4"),
                            ("max_text_chars", 0, "positive"),
                            ("label_range", [4, 1], "low < high")]:
        fresh = type(cfg.data.ingest)()
        setattr(fresh, key, value)
        cfg.data.ingest = fresh
        with pytest.raises(UserError, match=msg):
            run_import(cfg, src)


def test_every_row_rejected_in_skip_mode(tmp_path, cfg, csv_writer):
    src = csv_writer(tmp_path / "all.csv", ["query", "item_text", "rsl"], [["", "b", 4], ["a", "", 4]])
    cfg.data.ingest.on_bad_rows = "skip"
    with pytest.raises(UserError, match="all.csv: every one of the 2 rows was rejected"):
        run_import(cfg, src)


def test_reimport_is_identical_and_replaces_atomically(tmp_path, cfg, csv_writer):
    src = csv_writer(tmp_path / "r.csv", ["query", "item_text", "rsl"], [[f"q{i % 9}", f"t{i}", i % 4 + 1]
                                                                         for i in range(60)])
    first = read_manifest(run_import(cfg, src)["out"], "pairs")
    second = read_manifest(run_import(cfg, src)["out"], "pairs")
    assert first["content_hash"] == second["content_hash"]
    assert not [p for p in (tmp_path / "work" / "data").iterdir() if p.name.startswith(".")]


def test_jsonl_bad_lines_in_the_summary(tmp_path, cfg):
    p = tmp_path / "x.jsonl"
    p.write_text('{"query": "a", "item_text": "b", "rsl": 4}\n\n[1, 2]\n{"query": "c",\n'
                 '{"query": {"k": 1}, "item_text": "d", "rsl": "4"}\n{"query": "e", "item_text": "f", "rsl": 3}\n')
    with pytest.raises(BadRowsError) as err:
        run_import(cfg, p)
    msg = str(err.value)
    assert "3 of 5 rows are bad (line = line number in the file)" in msg
    assert "x.jsonl line 3, value '[1, 2]': expected a JSON object" in msg
    assert "x.jsonl line 4, value '{\"query\": \"c\",': not valid JSON: Expecting property name" in msg
    assert "x.jsonl line 5, column 'query', value '{\"k\": 1}': expected a string or number, got a list/object" in msg
