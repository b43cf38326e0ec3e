"""The CLI on a 10k-row CSV with problems planted at known rows: each is reported where it is."""

from __future__ import annotations

import csv
import io
import json

import pytest

from llm2ctr import cli
from llm2ctr.artifacts import read_manifest
from llm2ctr.data.store import load_pairs

N = 10_000
HEADER = ["id", "search_term", "product_uid", "product_title", "relevance", "category"]
# data row (1-based) -> (reason, column, cell value or None for a whole-row problem)
PLANTED = {
    11: ("empty_text", "search_term", ""),
    2001: ("empty_text", "search_term", "  "),
    3001: ("empty_text", "product_title", ""),
    101: ("text_too_long", "product_title", "long " * 500),
    202: ("control_chars", "search_term", "nul\x00byte"),
    303: ("replacement_char", "product_title", "caf\ufffd cr\ufffdme"),
    404: ("label_unparsable", "relevance", "abc"),
    405: ("label_unparsable", "relevance", "4 stars"),
    505: ("label_nan", "relevance", "NaN"),
    606: ("label_out_of_range", "relevance", "9"),
    607: ("label_out_of_range", "relevance", "-1"),
    708: ("label_not_integer", "relevance", "2.5"),
    809: ("empty_id", "id", ""),
    910: ("duplicate_id", "id", "id5"),
    1011: ("item_id_conflict", "product_uid", "u7"),
    1112: ("wrong_field_count", "", None),
    5555: ("wrong_field_count", "", None),
}
EXACT_DUPLICATES = {1213: 20, 1214: 20, 7000: 33}  # row -> the row it repeats


def make_rows():
    rows = [[f"id{i}", f"query {i % 1500}", f"u{i}", f"product {i}", str(i % 4 + 1), f"cat{i % 7}"]
            for i in range(1, N + 1)]
    col = {name: k for k, name in enumerate(HEADER)}
    for row, (_reason, column, value) in PLANTED.items():
        if column:
            rows[row - 1][col[column]] = value
        else:
            rows[row - 1] = rows[row - 1] + ["surplus field"]
    for row, original in EXACT_DUPLICATES.items():
        rows[row - 1] = list(rows[original - 1])
    return rows


@pytest.fixture(scope="module")
def planted_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "homedepot_like.csv"
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HEADER)
    w.writerows(make_rows())
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def test_import_refuses_and_reports_every_planted_problem(planted_csv, tmp_path, capsys):
    rejects = tmp_path / "rejects.csv"
    rc = cli.main(["data", "import", str(planted_csv), "--rejects", str(rejects), f"workdir={tmp_path / 'w'}"])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"{len(PLANTED)} of {N} rows are bad (row = 1-based data row; the header and blank lines" in err
    for row, (reason, column, value) in PLANTED.items():
        where = f"homedepot_like.csv row {row}"
        if column:
            where += f", column '{column}', value {value[:80]!r}"
        assert where in err, (row, reason)
    for reason in {r for r, _, _ in PLANTED.values()}:
        n = sum(1 for r, _, _ in PLANTED.values() if r == reason)
        assert f"  {reason}: {n} rows" in err
    assert "nothing was written" in err and not (tmp_path / "w" / "data" / "pairs").exists()
    with open(rejects, newline="") as fh:
        recs = list(csv.DictReader(fh))
    got = {(int(r["row"]), r["reason"], r["column"]) for r in recs}
    assert got == {(row, reason, column) for row, (reason, column, _) in PLANTED.items()}
    assert all(r["file"] == "homedepot_like.csv" for r in recs)


def test_skip_mode_imports_the_rest(planted_csv, tmp_path, capsys):
    out = tmp_path / "pairs"
    rc = cli.main(["data", "import", str(planted_csv), "--on-bad-rows", "skip", "--out", str(out),
                   "--map", "item_text=product_title", f"workdir={tmp_path / 'w'}", "data.split.test_share=0.2"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows_read"] == N and summary["rejected"] == len(PLANTED)
    assert summary["kept"] + summary["rejected"] == N
    assert summary["duplicates_collapsed"] == len(EXACT_DUPLICATES)
    table = load_pairs(out)
    assert table.num_rows == N - len(PLANTED) - len(EXACT_DUPLICATES)
    assert table.column("rsl").null_count == 0
    m = read_manifest(out, "pairs")
    assert m["counts"]["rejected_empty_text"] == 3 and m["counts"]["duplicates_collapsed"] == 3
    assert m["label"]["scale"] == "int" and m["source"]["path"] == str(planted_csv)
    assert (tmp_path / "pairs_rejects.csv").is_file()
    g = table.group_by("query").aggregate([("split", "count_distinct")])
    assert max(g.column("split_count_distinct").to_pylist()) == 1
    assert 0.15 < summary["splits"]["test"] / table.num_rows < 0.25


def test_validate_verb_and_help(planted_csv, tmp_path, capsys):
    assert cli.main(["data", "validate", str(planted_csv)]) == 2
    err = capsys.readouterr().err
    assert "checked only (dry run)" in err and "label_nan: 1 rows" in err
    for verb in ("import", "validate", "split"):
        with pytest.raises(SystemExit) as ex:
            cli.main(["data", verb, "--help"])
        assert ex.value.code == 0
        assert "usage: llm2ctr data " + verb in capsys.readouterr().out
