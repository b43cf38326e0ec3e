"""Fixtures for the data import tests: a config rooted in tmp_path and small file writers."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from llm2ctr.config import Config, load_config


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return load_config(None, [f"workdir={tmp_path / 'work'}"])


def write_csv(path: Path, header: list[str], rows: list[list[object]], *, delimiter: str = ",",
              encoding: str = "utf-8") -> Path:
    """Write rows with the csv module (real quoting); rows may have any length."""
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def good_rows(n: int, start: int = 0) -> list[list[object]]:
    """n valid (query, item_text, rsl) rows with distinct content, labels cycling 1..4."""
    return [[f"query {i % 97}", f"item number {i}", (i % 4) + 1] for i in range(start, start + n)]


@pytest.fixture
def csv_writer():
    return write_csv


@pytest.fixture
def rows():
    return good_rows
