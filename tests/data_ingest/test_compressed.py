"""Compressed inputs: every format reads the same through gzip, bzip2, xz and zstd, found by name or bytes."""

from __future__ import annotations

import bz2
import csv
import gzip
import hashlib
import io
import json
import lzma
import tarfile
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llm2ctr import cli
from llm2ctr.artifacts import read_manifest
from llm2ctr.data.ingest import BadRowsError, run_import
from llm2ctr.data.readers import InputError, read_source
from llm2ctr.data.store import load_pairs


def _zstd(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as stream:
        stream.write(data)
    return sink.getvalue().to_pybytes()


COMPRESS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress, ".zst": _zstd}
KIND = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}

# a wrong-field-count row (data row 3) and a blank line: row numbers must survive decompression
CSV = "query,item_text,rsl\nq1,item one,4\nq2,item two,3\nq3,surplus,2,extra\n\nq4,item four,1\n"
TSV = CSV.replace(",", "\t")
# a bad JSON line (line 3) after a blank line (line 2)
JSONL = ('{"query": "q1", "item_text": "item one", "rsl": 4}\n\n{"query": "q2",\n'
         '{"query": "q4", "item_text": "item four", "rsl": 1}\n')


def _parquet_bytes() -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"query": ["q1", "q2"], "item_text": ["a", "b"], "rsl": [4, 3]}), sink)
    return sink.getvalue().to_pybytes()


CONTENT = {"csv": CSV.encode(), "tsv": TSV.encode(), "jsonl": JSONL.encode(), "parquet": _parquet_bytes()}


def _same(a, b) -> None:
    assert a.table.equals(b.table)
    assert a.rows.tolist() == b.rows.tolist() and a.n_records == b.n_records and a.row_word == b.row_word
    assert a.issues == b.issues


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
@pytest.mark.parametrize("ext", list(COMPRESS))
def test_each_compression_reads_like_the_plain_file(tmp_path, ext, fmt):
    plain = tmp_path / f"pairs.{fmt}"
    plain.write_bytes(CONTENT[fmt])
    packed = tmp_path / f"pairs.{fmt}{ext}"
    packed.write_bytes(COMPRESS[ext](CONTENT[fmt]))
    want, got = read_source(plain), read_source(packed)
    assert got.fmt == fmt and got.compression == KIND[ext] and want.compression == ""
    _same(got, want)
    assert got.sha256 == hashlib.sha256(packed.read_bytes()).hexdigest()  # the file as stored
    if fmt in ("csv", "tsv"):
        assert got.rows.tolist() == [1, 2, 4] and [(i["row"], i["reason"]) for i in got.issues] == [
            (3, "wrong_field_count")]
    if fmt == "jsonl":
        assert got.rows.tolist() == [1, 4] and [(i["row"], i["reason"]) for i in got.issues] == [(3, "bad_json")]


def test_gz_csv_import_gives_the_same_pairs_artifact(tmp_path, cfg, csv_writer, rows):
    plain = csv_writer(tmp_path / "train.csv", ["query", "item_text", "rsl"], rows(300))
    packed = tmp_path / "train.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    a = run_import(cfg, plain, tmp_path / "plain_out")
    b = run_import(cfg, packed, tmp_path / "gz_out")
    assert load_pairs(a["out"]).equals(load_pairs(b["out"]))
    ma, mb = read_manifest(a["out"], "pairs"), read_manifest(b["out"], "pairs")
    assert ma["content_hash"] == mb["content_hash"] and ma["counts"] == mb["counts"]
    assert ma["splits"] == mb["splits"] and ma["label"] == mb["label"]
    assert b["format"] == "csv" and b["compression"] == "gzip" and "compression" not in a
    assert mb["source"]["compression"] == "gzip" and "compression" not in ma["source"]


def test_gzip_file_with_a_plain_name_is_recognised_by_its_bytes(tmp_path, cfg, csv_writer, rows):
    plain = csv_writer(tmp_path / "ref.csv", ["query", "item_text", "rsl"], rows(40))
    named_plain = tmp_path / "train.csv"
    named_plain.write_bytes(gzip.compress(plain.read_bytes()))
    got = read_source(named_plain)
    assert got.compression == "gzip" and got.table.equals(read_source(plain).table)
    # --format csv on a gzip file was read as raw bytes and blamed on the encoding
    cfg.data.ingest.format = "csv"
    assert load_pairs(run_import(cfg, named_plain)["out"]).num_rows == 40
    # xz bytes behind a .gz name: the bytes decide
    wrong = tmp_path / "x.jsonl.gz"
    wrong.write_bytes(lzma.compress(JSONL.encode()))
    assert read_source(wrong).compression == "xz"


def test_bzip2_magic_needs_the_block_marker(tmp_path):
    p = tmp_path / "bzh.csv"
    p.write_text("BZh1,item_text,rsl\na,b,4\n")  # starts like bzip2, but is a CSV
    raw = read_source(p)
    assert raw.compression == "" and raw.table.column_names == ["BZh1", "item_text", "rsl"]


@pytest.mark.parametrize("ext", list(COMPRESS))
def test_truncated_file_is_a_clear_error(tmp_path, ext):
    data = COMPRESS[ext](CSV.encode() * 50)
    p = tmp_path / f"cut.csv{ext}"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as err:
        read_source(p)
    msg = str(err.value)
    assert msg.startswith(f"{p}: cannot decompress it as {KIND[ext]}") and "truncated or corrupt" in msg
    assert f"cut.csv{ext}" in msg


def test_corrupt_gz_and_a_gz_name_on_plain_text(tmp_path):
    data = bytearray(gzip.compress(CSV.encode() * 50))
    data[len(data) // 2] ^= 0xFF
    p = tmp_path / "bad.csv.gz"
    p.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"bad\.csv\.gz: cannot decompress it as gzip .*truncated or corrupt.*gzip -t"):
        read_source(p)
    p = tmp_path / "notgz.csv.gz"
    p.write_text(CSV)
    with pytest.raises(InputError, match=r"notgz\.csv\.gz: the name ends in '\.gz' but the file does not start "
                                         r"with the gzip magic bytes 1f 8b"):
        read_source(p)


def test_inner_extension_decides_the_format(tmp_path):
    p = tmp_path / "pairs.gz"
    p.write_bytes(gzip.compress(CSV.encode()))
    with pytest.raises(InputError, match=r"pairs\.gz: cannot tell the format from the extension '' inside the "
                                         r"compression suffix '\.gz'.*--format"):
        read_source(p)
    assert read_source(p, "csv").table.num_rows == 3


def test_bad_rows_are_reported_the_same_through_compression(tmp_path, cfg, csv_writer, rows):
    body = rows(50)
    body[9][2] = "nine"  # data row 10
    body[29][1] = ""  # data row 30
    plain = csv_writer(tmp_path / "b.csv", ["query", "item_text", "rsl"], body)
    packed = tmp_path / "b.csv.bz2"
    packed.write_bytes(bz2.compress(plain.read_bytes()))
    msgs = []
    for src in (plain, packed):
        cfg.data.ingest.rejects = str(tmp_path / f"{src.name}_rejects.csv")
        with pytest.raises(BadRowsError) as err:
            run_import(cfg, src)
        msgs.append(str(err.value).replace(str(src), "SRC").replace(src.name, "NAME"))
        assert f"{src.name} row 10, column 'rsl', value 'nine'" in str(err.value)
    assert msgs[0] == msgs[1]
    with open(tmp_path / "b.csv.bz2_rejects.csv", newline="") as fh:
        recs = list(csv.DictReader(fh))
    assert {(r["file"], r["row"], r["reason"]) for r in recs} == {
        ("b.csv.bz2", "10", "label_unparsable"), ("b.csv.bz2", "30", "empty_text")}


def test_encoding_error_in_a_compressed_file_names_the_decompressed_offset(tmp_path, cfg):
    p = tmp_path / "fr.csv.xz"
    p.write_bytes(lzma.compress("query,item_text,rsl\ncrème,pot,4\n".encode("latin-1")))
    with pytest.raises(InputError) as err:
        read_source(p)
    msg = str(err.value)
    assert "fr.csv.xz: byte offset 22 of the xz-decompressed content (line 2, byte 3 of the line) is 0xe8" in msg
    assert read_source(p, encoding="latin-1").table.column("query").to_pylist() == ["crème"]


def test_archives_are_refused_with_advice(tmp_path):
    z = tmp_path / "pairs.csv"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("pairs.csv", CSV)
    with pytest.raises(InputError, match=r"pairs\.csv: is a ZIP archive; unzip it"):
        read_source(z)
    t = tmp_path / "pairs.csv.gz"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("pairs.csv")
        info.size = len(CSV)
        tf.addfile(info, io.BytesIO(CSV.encode()))
    t.write_bytes(gzip.compress(buf.getvalue()))
    with pytest.raises(InputError, match=r"pairs\.csv\.gz: is a tar archive \(gzip-compressed\); extract it"):
        read_source(t)


def test_cli_imports_a_zst_jsonl(tmp_path, capsys):
    src = tmp_path / "train.jsonl.zst"
    lines = [json.dumps({"query": f"q{i % 7}", "item_text": f"item {i}", "rsl": i % 4 + 1}) for i in range(30)]
    src.write_bytes(_zstd(("\n".join(lines) + "\n").encode()))
    out = tmp_path / "pairs"
    assert cli.main(["data", "import", str(src), "--out", str(out), f"workdir={tmp_path / 'w'}"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["format"] == "jsonl" and summary["compression"] == "zstd" and summary["rows"] == 30
    assert sorted(load_pairs(out).column("item_text").to_pylist()) == sorted(f"item {i}" for i in range(30))


def test_empty_after_decompression(tmp_path):
    p = tmp_path / "e.csv.gz"
    p.write_bytes(gzip.compress(b""))
    with pytest.raises(InputError, match=r"e\.csv\.gz: decompresses \(gzip\) to 0 bytes"):
        read_source(p)


def test_zstandard_fallback_decodes_every_frame_and_refuses_a_cut_one():
    """The path taken when pyarrow has no zstd codec; skipped unless zstandard is installed."""
    pytest.importorskip("zstandard")
    from llm2ctr.data.readers import zstd_with_zstandard

    frame = _zstd(CSV.encode())
    assert zstd_with_zstandard(frame + frame) == CSV.encode() * 2
    with pytest.raises(EOFError):
        zstd_with_zstandard(frame[:-3])
