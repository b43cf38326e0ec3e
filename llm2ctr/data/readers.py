"""Read a user's pairs file (CSV, TSV, Parquet, JSON Lines, a saved HF dataset) into Arrow.

Readers keep every value as the file has it (CSV/TSV as strings) and remember where each row
came from, so that validation can name the exact row of a bad value. Records that cannot even be
parsed (a CSV row with the wrong number of fields, a JSONL line that is not a JSON object) are
returned as issues instead of stopping the read: the user then sees every problem at once.
File-level problems (missing file, wrong encoding, corrupt Parquet...) raise :class:`InputError`.

Compressed files (gzip, bzip2, xz, zstd) are decompressed before parsing, whatever the format; the
compression is recognised by the name (``train.csv.gz``) and by the first bytes (a gzip file named
``train.csv``), so a compressed file is never parsed as text and blamed on its encoding. Rows and
byte offsets in messages refer to the decompressed content, which is what the user sees with zcat.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import hashlib
import io
import json
import logging
import lzma
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from llm2ctr.errors import InputError, OptionalDependencyError  # InputError: importable here as before

log = logging.getLogger(__name__)

FORMATS = ("auto", "csv", "tsv", "parquet", "jsonl", "hf")
EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
# compression by file suffix; the first bytes decide when they disagree with the name
COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd", ".zstd": "zstd"}
_MAGIC = {"gzip": b"\x1f\x8b", "xz": b"\xfd7zXZ\x00", "zstd": b"\x28\xb5\x2f\xfd", "bz2": b"BZh"}
# bzip2: 'BZh', a block size digit, then a block (pi) or end-of-stream (sqrt pi) marker; the full
# 10 bytes, so a CSV whose header happens to start with 'BZh' is not taken for bzip2
_BZ2_HEAD = re.compile(rb"BZh[1-9](\x31\x41\x59\x26\x53\x59|\x17\x72\x45\x38\x50\x90)")
_TEST_TOOL = {"gzip": "gzip -t", "bz2": "bzip2 -t", "xz": "xz -t", "zstd": "zstd -t"}
_DELIMS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
_ISSUE_FIELDS = ("row", "column", "value", "reason", "detail")


@dataclass
class RawData:
    """A source read as-is: ``rows[i]`` is the 1-based position of ``table`` row ``i`` in the file."""

    path: Path
    fmt: str
    table: pa.Table
    rows: np.ndarray
    row_word: str  # "row" (1-based data row, header not counted) or "line" (JSONL file line)
    n_records: int  # table rows + unparsable records
    sha256: str
    encoding: str = ""
    issues: list[dict] = field(default_factory=list)  # unparsable records: row/column/value/reason/detail
    nested: dict[str, np.ndarray] = field(default_factory=dict)  # column -> table rows holding a list/object
    compression: str = ""  # "" | gzip | bz2 | xz | zstd: the file was decompressed before parsing


def detect_format(path: Path, fmt: str = "auto") -> str:
    """The reader to use: the explicit ``fmt``, a directory = HF dataset, else the file extension.

    A compression suffix is looked through: ``train.csv.gz`` is CSV.
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown format '{fmt}'; expected one of {', '.join(FORMATS)}")
    if fmt != "auto":
        return fmt
    if path.is_dir():
        return "hf"
    inner = path.with_suffix("") if path.suffix.lower() in COMPRESSIONS else path
    fmt = EXTENSIONS.get(inner.suffix.lower(), "")
    if not fmt:
        where = f" inside the compression suffix '{path.suffix}'" if inner is not path else ""
        raise InputError(
            f"{path}: cannot tell the format from the extension '{inner.suffix}'{where}; supported: "
            f"{', '.join(sorted(EXTENSIONS))} or a saved HF dataset folder, each optionally compressed "
            f"({', '.join(sorted(COMPRESSIONS))}). Pass --format csv|tsv|parquet|jsonl|hf"
        )
    return fmt


def sniff_compression(head: bytes) -> str:
    """The compression the first bytes announce ('' for none): names lie more often than magic bytes."""
    for kind, magic in _MAGIC.items():
        if head.startswith(magic) and (kind != "bz2" or _BZ2_HEAD.match(head)):
            return kind
    return ""


def _zstd_decompress(data: bytes) -> bytes:
    """zstd via pyarrow's codec (a dependency already), else the optional ``zstandard`` package.

    Both paths fail on a truncated file; ``zstandard``'s stream reader alone would return the
    rows before the cut without a word, so frames are decoded one by one and checked for their end.
    """
    if pa.Codec.is_available("zstd"):
        with pa.CompressedInputStream(pa.BufferReader(data), "zstd") as stream:
            return stream.read()
    return zstd_with_zstandard(data)


def zstd_with_zstandard(data: bytes) -> bytes:
    """Every zstd frame in ``data`` decoded with ``zstandard``; a frame cut short raises EOFError."""
    try:
        import zstandard
    except ImportError:
        raise OptionalDependencyError(
            "reading .zst files needs zstd support: this pyarrow build has none and the zstandard "
            "package is not installed; pip install zstandard (or decompress first: zstd -d FILE)"
        ) from None
    dctx = zstandard.ZstdDecompressor()
    parts, rest = [], data
    while rest:
        frame = dctx.decompressobj()
        parts.append(frame.decompress(rest))
        if not frame.eof:
            raise EOFError("compressed data ended before the end of a zstd frame")
        rest = frame.unused_data
    return b"".join(parts)


_DECOMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.decompress, "bz2": bz2.decompress, "xz": lzma.decompress, "zstd": _zstd_decompress,
}


def decompress(path: Path, data: bytes) -> tuple[str, bytes]:
    """``(compression, content)``: ``data`` decompressed if the bytes or the name say it is compressed.

    A name that promises compression the bytes do not have is an error rather than a guess: a
    corrupt header would otherwise be parsed as text and reported as an encoding problem.
    """
    by_name = COMPRESSIONS.get(path.suffix.lower(), "")
    kind = sniff_compression(data[:16])
    if not kind and not by_name:
        if data.startswith(b"PK\x03\x04"):
            raise InputError(f"{path}: is a ZIP archive; unzip it and import the file inside "
                             "(.gz, .bz2, .xz and .zst single files are read directly)")
        return "", data
    if not kind:
        raise InputError(
            f"{path}: the name ends in '{path.suffix}' but the file does not start with the {by_name} "
            f"magic bytes {_MAGIC[by_name].hex(' ')} (it starts with {data[:8].hex(' ')}); it is corrupt, "
            f"or not compressed: then rename it without '{path.suffix}'"
        )
    if kind != by_name:
        log.info("%s: %s-compressed (recognised from its first bytes); decompressing", path, kind)
    try:
        out = _DECOMPRESS[kind](data)
    except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError, pa.ArrowException) as exc:
        raise InputError(
            f"{path}: cannot decompress it as {kind} ({exc}); the file is truncated or corrupt: check it "
            f"with `{_TEST_TOOL[kind]} {path.name}`, then download or compress it again"
        ) from None
    if len(out) > 262 and out[257:262] == b"ustar":
        raise InputError(f"{path}: is a tar archive ({kind}-compressed); extract it (tar -xf) and import "
                         "the file inside")
    return kind, out


def read_source(source: str | Path, fmt: str = "auto", encoding: str = "utf-8") -> RawData:
    """Read ``source`` in the given (or detected) format; see the module docstring for errors."""
    path = Path(source)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    fmt = detect_format(path, fmt)
    if fmt == "hf":
        return _read_hf(path)
    if path.is_dir():
        raise InputError(f"{path}: is a directory; --format {fmt} expects a file (use --format hf for a saved dataset)")
    data = path.read_bytes()
    if not data.strip():
        raise InputError(f"{path}: the file is empty ({len(data)} bytes); expected a header and data rows")
    sha = hashlib.sha256(data).hexdigest()  # of the file as stored, compressed or not
    compression, data = decompress(path, data)
    if compression and not data.strip():
        raise InputError(f"{path}: decompresses ({compression}) to {len(data)} bytes of nothing; "
                         "expected a header and data rows")
    if fmt == "parquet":
        raw = _read_parquet(path, data, sha)
    else:
        utf8 = to_utf8(path, data, encoding, compression)
        if fmt == "jsonl":
            raw = _read_jsonl(path, utf8, sha, encoding)
        else:
            raw = _read_delimited(path, utf8, sha, encoding, "," if fmt == "csv" else "\t", fmt)
    raw.compression = compression
    return raw


def to_utf8(path: Path, data: bytes, encoding: str, compression: str = "") -> bytes:
    """Decode with ``encoding`` (checking every byte), drop a BOM, return UTF-8 bytes for Arrow.

    For a compressed file ``data`` is the decompressed content and the message says so.
    """
    try:
        enc = codecs.lookup(encoding).name
    except LookupError:
        raise InputError(f"{path}: unknown encoding '{encoding}' (try utf-8, cp1252 or latin-1)") from None
    try:
        text = data.decode(enc)
    except UnicodeDecodeError as exc:
        off = exc.start
        line = data.count(b"\n", 0, off) + 1
        col = off - (data.rfind(b"\n", 0, off) + 1) + 1
        context = data[max(0, off - 15): off + 15].decode(enc, errors="replace")
        if enc.startswith("utf-8"):
            hint = "the file is probably in a legacy single-byte encoding: re-run with --encoding cp1252 (Windows) or --encoding latin-1"
        else:
            hint = "re-run with --encoding utf-8 or the encoding the file was saved with"
        of = f" of the {compression}-decompressed content" if compression else ""
        raise InputError(
            f"{path}: byte offset {off}{of} (line {line}, byte {col} of the line) is 0x{data[off]:02x}, which is "
            f"not valid {enc} (near {context!r}); {hint}"
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.encode("utf-8") if enc != "utf-8" or data.startswith(codecs.BOM_UTF8) else data


def _header_names(path: Path, utf8: bytes, delimiter: str) -> list[str]:
    first = utf8.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8")
    names = next(csv.reader([first], delimiter=delimiter), [])
    names = [n.strip() for n in names]
    seen: dict[str, int] = {}
    for i, name in enumerate(names, 1):
        if name == "":
            raise InputError(f"{path}: header column {i} has no name; every column needs a name (header: {first!r})")
        if name in seen:
            raise InputError(
                f"{path}: duplicate column name '{name}' in the header (columns {seen[name]} and {i}); "
                "rename one of them so each column has a unique name"
            )
        seen[name] = i
    if len(names) == 1:
        others = [word for d, word in _DELIMS.items() if d != delimiter and d in first]
        if others:
            fmt_hint = "--format tsv" if "tab" in others else f"a {others[0]}-separated file is not supported; convert it to CSV or TSV"
            raise InputError(
                f"{path}: the header has a single column {names[0]!r} when split on "
                f"{_DELIMS[delimiter]}s, but it contains {others[0]}s: wrong delimiter? ({fmt_hint})"
            )
    return names


def _read_delimited(path: Path, utf8: bytes, sha: str, encoding: str, delimiter: str, fmt: str) -> RawData:
    names = _header_names(path, utf8, delimiter)
    bad: list[tuple[int, int, int, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        bad.append((row.number, row.actual_columns, row.expected_columns, row.text))
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(utf8),
            read_options=pacsv.ReadOptions(use_threads=False, column_names=names, skip_rows=1),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise InputError(f"{path}: cannot parse as {fmt.upper()}: {exc}") from None
    # pyarrow numbers records counting the header as record 1; blank lines are not records.
    bad = [(number - 1, actual, expected, text) for number, actual, expected, text in bad]
    bad_rows = np.array([b[0] for b in bad], dtype=np.int64)
    n_records = table.num_rows + len(bad)
    if n_records == 0:
        raise InputError(f"{path}: has a header ({', '.join(names)}) but no data rows")
    rows = np.setdiff1d(np.arange(1, n_records + 1, dtype=np.int64), bad_rows, assume_unique=True)
    issues = [
        {
            "row": int(number),
            "column": "",
            "value": text[:200],
            "reason": "wrong_field_count",
            "detail": f"the row has {actual} fields; expected {expected} like the header "
            + ("(an unclosed quote joined the following lines into this row)" if "\n" in text and '"' in text
               else "(an unquoted delimiter or quote inside a text field?)"),
        }
        for number, actual, expected, text in bad
    ]
    return RawData(path, fmt, table, rows, "row", n_records, sha, encoding, issues)


_BLANK_LINE = re.compile(rb"(^|\n)[ \t\r]*(\n|$)")


def _read_jsonl(path: Path, utf8: bytes, sha: str, encoding: str) -> RawData:
    if utf8.lstrip()[:1] == b"[":
        raise InputError(
            f"{path}: is a JSON array, not JSON Lines (one object per line); convert it, e.g. jq -c '.[]'"
        )
    if not _BLANK_LINE.search(utf8.rstrip(b"\n")):
        try:  # fast path: one Arrow parse; line i is row i when there are no blank lines
            table = pajson.read_json(io.BytesIO(utf8), read_options=pajson.ReadOptions(use_threads=False))
            rows = np.arange(1, table.num_rows + 1, dtype=np.int64)
            nested = {
                name: np.flatnonzero(~np.asarray(table.column(name).is_null().to_numpy(zero_copy_only=False)))
                for name in table.column_names
                if pa.types.is_nested(table.schema.field(name).type)
            }
            return RawData(path, "jsonl", table, rows, "line", table.num_rows, sha, encoding, [], nested)
        except pa.ArrowInvalid:
            pass  # mixed types or a bad line: the line-by-line reader names the line
    return _read_jsonl_lines(path, utf8, sha, encoding)


def _read_jsonl_lines(path: Path, utf8: bytes, sha: str, encoding: str) -> RawData:
    """Slow, exact reader: parses each line, collecting bad lines as issues."""
    records: list[dict] = []
    rows: list[int] = []
    issues: list[dict] = []
    for lineno, line in enumerate(utf8.decode("utf-8").split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            issues.append({"row": lineno, "column": "", "value": line[:200], "reason": "bad_json",
                           "detail": f"not valid JSON: {exc.msg} at character {exc.colno}"})
            continue
        if not isinstance(obj, dict):
            issues.append({"row": lineno, "column": "", "value": line[:200], "reason": "not_object",
                           "detail": f"expected a JSON object {{\"query\": ...}}, got a {type(obj).__name__}"})
            continue
        records.append(obj)
        rows.append(lineno)
    if not records:
        first = "; ".join(f"line {i['row']}: {i['detail']}" for i in issues[:3])
        raise InputError(f"{path}: no line is a JSON object{' (' + first + ')' if first else ''}; "
                         "expected JSON Lines, one object per line")
    names: dict[str, None] = {}
    for rec in records:
        names.update(dict.fromkeys(rec))
    columns: dict[str, list] = {}
    nested: dict[str, np.ndarray] = {}
    for name in names:
        vals = [rec.get(name) for rec in records]
        nest = [i for i, v in enumerate(vals) if isinstance(v, (dict, list))]
        if nest:
            nested[name] = np.asarray(nest, dtype=np.int64)
        columns[name] = [v if v is None or isinstance(v, str) else json.dumps(v) for v in vals]
    table = pa.table({k: pa.array(v, type=pa.string()) for k, v in columns.items()})
    return RawData(path, "jsonl", table, np.asarray(rows, dtype=np.int64), "line",
                   len(records) + len(issues), sha, encoding, issues, nested)


def _read_parquet(path: Path, data: bytes, sha: str) -> RawData:
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise InputError(
            f"{path}: not a readable Parquet file ({exc}); the file is truncated or corrupt, or not Parquet"
        ) from None
    return _from_table(path, "parquet", table, sha)


def _read_hf(path: Path) -> RawData:
    import datasets

    from llm2ctr.artifacts import hash_files

    if not path.is_dir():
        raise InputError(f"{path}: --format hf expects a folder written by datasets' save_to_disk")
    try:
        ds = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise InputError(
            f"{path}: not a saved Hugging Face dataset folder ({exc}); expected the output of "
            "Dataset.save_to_disk (dataset_info.json, state.json, *.arrow)"
        ) from None
    if isinstance(ds, datasets.DatasetDict):
        parts = []
        for name, part in ds.items():
            t = part.data.table
            if "split" not in t.column_names:
                split = {"validation": "valid", "val": "valid", "dev": "valid"}.get(name, name)
                t = t.append_column("split", pa.array([split] * t.num_rows, type=pa.string()))
            parts.append(t)
        log.info("%s: a DatasetDict with splits %s; rows are numbered across them in that order",
                 path, list(ds.keys()))
        table = pa.concat_tables(parts, promote_options="permissive")
    else:
        table = ds.data.table
    return _from_table(path, "hf", table, hash_files(path))


def _from_table(path: Path, fmt: str, table: pa.Table, sha: str) -> RawData:
    names = table.column_names
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise InputError(f"{path}: duplicate column name(s) {dups}; each column needs a unique name")
    if table.num_rows == 0:
        raise InputError(f"{path}: has columns ({', '.join(names)}) but no rows")
    nested = {
        f.name: np.flatnonzero(~table.column(f.name).is_null().to_numpy(zero_copy_only=False))
        for f in table.schema
        if pa.types.is_nested(f.type)
    }
    rows = np.arange(1, table.num_rows + 1, dtype=np.int64)
    return RawData(path, fmt, table, rows, "row", table.num_rows, sha, "", [], nested)


def issue_fields() -> tuple[str, ...]:
    return _ISSUE_FIELDS
