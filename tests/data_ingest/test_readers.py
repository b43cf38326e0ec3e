"""Readers: each format imports, and each file-level problem names the file and says what to do."""

from __future__ import annotations

import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llm2ctr.cli.common import UserError
from llm2ctr.data.ingest import run_import
from llm2ctr.data.readers import InputError, read_source
from llm2ctr.data.store import load_pairs


def test_latin1_csv_with_accents(tmp_path, cfg, csv_writer):
    src = csv_writer(tmp_path / "fr.csv", ["query", "item_text", "rsl"],
                     [["crème brûlée", "Moule à crème brûlée", 4], ["café", "Cafetière à piston", 3]],
                     encoding="latin-1")
    with pytest.raises(InputError) as err:
        run_import(cfg, src)
    msg = str(err.value)
    assert "fr.csv" in msg and "byte offset 22" in msg and "line 2, byte 3" in msg and "0xe8" in msg
    assert "--encoding cp1252" in msg and "latin-1" in msg
    cfg.data.ingest.encoding = "latin-1"
    summary = run_import(cfg, src)
    table = load_pairs(summary["out"])
    assert table.column("query").to_pylist() == ["crème brûlée", "café"]
    assert table.column("item_text").to_pylist()[0] == "Moule à crème brûlée"


def test_utf8_bom_is_dropped(tmp_path, cfg):
    src = tmp_path / "bom.csv"
    src.write_bytes(b"\xef\xbb\xbfquery,item_text,rsl\nq,i,4\n")
    assert load_pairs(run_import(cfg, src)["out"]).column("query").to_pylist() == ["q"]


def test_tsv_and_esci_letters(tmp_path, cfg, csv_writer):
    src = csv_writer(tmp_path / "esci.tsv", ["query", "product_title", "esci_label", "product_id"],
                     [["usb c cable", "Anker USB-C, 2 m", "E", "B01"], ["usb c cable", "Lightning cable", "S", "B02"],
                      ["usb c cable", "Phone case", "C", "B03"], ["usb c cable", "Garden hose", "I", "B04"]],
                     delimiter="\t")
    summary = run_import(cfg, src)
    assert summary["label_scale"] == "esci" and summary["column_map"]["item_text"] == "product_title"
    t = load_pairs(summary["out"])
    assert t.column("rsl").to_pylist() == [4, 3, 2, 1]
    assert t.column("item_id").to_pylist() == ["B01", "B02", "B03", "B04"]
    assert len(set(t.column("split").to_pylist())) == 1  # one query -> one split


def test_continuous_home_depot_scale_with_map(tmp_path, cfg, csv_writer):
    src = csv_writer(tmp_path / "hd.csv", ["search_term", "title", "relevance"],
                     [["angle bracket", f"bracket {v}", v] for v in (1, 1.33, 1.67, 2, 2.33, 2.67, 3)])
    cfg.data.ingest.column_map = {"query": "search_term", "item_text": "title", "rsl": "relevance"}
    summary = run_import(cfg, src)
    assert summary["label_scale"] == "continuous"
    assert load_pairs(summary["out"]).column("rsl").to_pylist() == [1, 1, 2, 3, 3, 4, 4]


def test_parquet_jsonl_and_hf_give_the_same_pairs(tmp_path, cfg):
    data = {"query": ["a", "b", "c"], "item_text": ["x", "y", "z"], "rsl": [4, 1, 2], "category": ["k", "", "k"]}
    pq.write_table(pa.table(data), tmp_path / "p.parquet")
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(dict(zip(data, v, strict=True)))
                                                for v in zip(*data.values(), strict=True)) + "\n")
    datasets.Dataset.from_dict(data).save_to_disk(str(tmp_path / "hfdir"))
    tables = []
    for name in ("p.parquet", "p.jsonl", "hfdir"):
        summary = run_import(cfg, tmp_path / name, tmp_path / f"out_{name}")
        assert summary["rows"] == 3 and summary["category_defaulted"] == 1
        tables.append(load_pairs(summary["out"]).select(["pair_id", "query", "item_text", "rsl", "category"]))
    assert tables[0].equals(tables[1]) and tables[0].equals(tables[2])
    assert tables[0].column("category").to_pylist() == ["k", "unknown", "k"]
    # pair ids are content hashes: stable across formats and runs
    assert tables[0].column("pair_id")[0].as_py().startswith("p")


def test_hf_dataset_dict_keeps_its_splits(tmp_path, cfg):
    part = {"query": ["a", "b"], "item_text": ["x", "y"], "rsl": [4, 3]}
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict(part),
                               "test": datasets.Dataset.from_dict({**part, "query": ["c", "d"]})})
    dd.save_to_disk(str(tmp_path / "dd"))
    cfg.data.split.valid_share = 0.5
    t = load_pairs(run_import(cfg, tmp_path / "dd")["out"])
    got = dict(zip(t.column("query").to_pylist(), t.column("split").to_pylist(), strict=True))
    assert got["c"] == got["d"] == "test"
    assert sorted([got["a"], got["b"]]) == ["train", "valid"]  # valid carved out of train


def _err(tmp_path, name, content, fmt="auto", encoding="utf-8"):
    p = tmp_path / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    elif content is not None:
        p.write_text(content)
    with pytest.raises(UserError) as err:
        read_source(p, fmt, encoding)
    assert name in str(err.value) or "format" in str(err.value)
    return str(err.value)


def test_file_level_errors(tmp_path):
    assert "no such file" in _err(tmp_path, "missing.csv", None)
    assert "cannot tell the format" in _err(tmp_path, "pairs.xlsx", "a")
    assert "unknown format 'xls'" in _err(tmp_path, "pairs.csv", "a", fmt="xls")
    assert "empty (0 bytes)" in _err(tmp_path, "empty.csv", b"")
    assert "no data rows" in _err(tmp_path, "header.csv", "query,item_text,rsl\n")
    assert "unknown encoding 'utf-9'" in _err(tmp_path, "enc.csv", "query\n", encoding="utf-9")
    msg = _err(tmp_path, "semi.csv", "query\titem_text\trsl\na\tb\t4\n")
    assert "wrong delimiter" in msg and "--format tsv" in msg and "tab" in msg
    msg = _err(tmp_path, "dup.csv", "query,query,rsl\na,b,4\n")
    assert "duplicate column name 'query'" in msg and "columns 1 and 2" in msg
    assert "header column 2 has no name" in _err(tmp_path, "noname.csv", "query,,rsl\na,b,4\n")
    assert "JSON array" in _err(tmp_path, "arr.json", '[{"query": "a"}]')
    msg = _err(tmp_path, "bad.parquet", b"PAR1 this is not parquet at all")
    assert "not a readable Parquet file" in msg
    (tmp_path / "notds").mkdir()
    assert "not a saved Hugging Face dataset" in _err(tmp_path, "notds", None)
    assert "is a directory" in _err(tmp_path, "notds", None, fmt="csv")


def test_truncated_parquet(tmp_path):
    pq.write_table(pa.table({"query": ["a"] * 100}), tmp_path / "t.parquet")
    data = (tmp_path / "t.parquet").read_bytes()
    assert "truncated or corrupt" in _err(tmp_path, "t.parquet", data[: len(data) // 2])


def test_jsonl_bad_lines_are_row_issues_with_line_numbers(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"query": "a", "item_text": "b", "rsl": 4}\n\n[1, 2]\n{"query": "c",\n'
                 '{"query": ["list"], "item_text": "d", "rsl": "4"}\n')
    raw = read_source(p)
    assert raw.rows.tolist() == [1, 5] and raw.n_records == 4 and raw.row_word == "line"
    got = {(i["row"], i["reason"]) for i in raw.issues}
    assert got == {(3, "not_object"), (4, "bad_json")}
    assert raw.nested["query"].tolist() == [1]


def test_csv_wrong_field_count_rows_are_numbered_as_data_rows(tmp_path):
    p = tmp_path / "f.csv"
    p.write_text('query,item_text,rsl\na,"multi\nline",4\n\nb,c\nd,e,1\nf,g,2,extra\n')
    raw = read_source(p)
    assert raw.rows.tolist() == [1, 3] and raw.n_records == 4
    assert [(i["row"], i["reason"]) for i in raw.issues] == [(2, "wrong_field_count"), (4, "wrong_field_count")]
    assert "has 4 fields; expected 3" in raw.issues[1]["detail"]


def test_unclosed_quote_and_all_bad_jsonl(tmp_path):
    p = tmp_path / "q.csv"
    p.write_text('query,item_text,rsl\nok,fine,4\na,"unterminated,4\nb,c,4\n')
    raw = read_source(p)
    assert [(i["row"], i["reason"]) for i in raw.issues] == [(2, "wrong_field_count")]
    assert "unclosed quote" in raw.issues[0]["detail"]
    msg = _err(tmp_path, "bad.jsonl", '{"query": "c",\n[1]\n')
    assert "no line is a JSON object (line 1: not valid JSON" in msg and "line 2: expected a JSON object" in msg
