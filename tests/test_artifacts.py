import json
from pathlib import Path

import pyarrow as pa
import pytest

from llm2ctr.artifacts import ArtifactError, atomic_dir, read_manifest, verify_content, write_manifest
from llm2ctr.data.store import load_pairs, save_table


def _pairs() -> pa.Table:
    return pa.table(
        {
            "pair_id": ["p1", "p2"],
            "query": ["red shoe", "blue hat"],
            "item_id": ["i1", "i2"],
            "item_text": ["Nike red running shoe", "Acme blue hat"],
            "rsl": [4, None],
            "category": ["shoes", "hats"],
            "split": ["train", "test"],
        }
    )


def test_save_and_load_pairs_roundtrip(tmp_path: Path):
    out = tmp_path / "pairs"
    m = save_table(_pairs(), out, kind="pairs", stage="data.test")
    assert m["counts"]["rows"] == 2
    t = load_pairs(out)
    assert t.column("rsl").type == pa.int8()
    assert t.column("rsl").to_pylist() == [4, None]
    verify_content(out)


def test_missing_manifest_and_wrong_kind(tmp_path: Path):
    out = tmp_path / "pairs"
    save_table(_pairs(), out, kind="pairs", stage="data.test")
    with pytest.raises(ArtifactError, match="expected an artifact of kind 'events'"):
        read_manifest(out, "events")
    m = json.loads((out / "manifest.json").read_text())
    m["schema_version"] = 99
    (out / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ArtifactError, match="schema version 99"):
        read_manifest(out)
    (out / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match="manifest.json is missing"):
        load_pairs(out)


def test_corruption_is_detected(tmp_path: Path):
    out = tmp_path / "pairs"
    save_table(_pairs(), out, kind="pairs", stage="data.test")
    arrow = next(out.glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[:-10])
    with pytest.raises(ArtifactError, match="content hash"):
        verify_content(out)


def test_atomic_dir_leaves_nothing_on_failure(tmp_path: Path):
    final = tmp_path / "art"
    with pytest.raises(RuntimeError):
        with atomic_dir(final) as tmp:
            (tmp / "x").write_text("half")
            raise RuntimeError("boom")
    assert not final.exists()
    assert list(tmp_path.iterdir()) == []


def test_missing_column_is_named(tmp_path: Path):
    with pytest.raises(ValueError, match=r"missing required column\(s\) \['item_text'\]"):
        save_table(_pairs().drop(["item_text"]), tmp_path / "p", kind="pairs", stage="t")


def test_a_kind_written_under_its_old_name_reads_as_the_new_one(tmp_path: Path):
    """Ranker folders written before the stage was named ``ctr`` (kind "ranker") stay readable."""
    out = tmp_path / "model"
    with atomic_dir(out) as tmp:
        (tmp / "w.txt").write_text("x")
        write_manifest(tmp, kind="ctr", stage="ctr", config={}, inputs={})
    m = json.loads((out / "manifest.json").read_text())
    m["kind"] = "ranker"
    (out / "manifest.json").write_text(json.dumps(m))
    assert read_manifest(out, "ctr")["schema_version"] == 1
    with pytest.raises(ArtifactError, match="expected an artifact of kind 'pairs', found 'ctr'"):
        read_manifest(out, "pairs")
