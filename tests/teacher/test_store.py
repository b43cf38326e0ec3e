"""The sharded embedding store: round trip, shard boundaries, and refusals that name the problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llm2ctr.artifacts import ArtifactError
from llm2ctr.teacher.store import (
    EmbeddingStoreWriter,
    iter_teacher_shards,
    load_reduction,
    load_teacher_embeddings,
    read_shard,
    restore_vectors,
)


def test_round_trip_across_shards(tmp_path: Path):
    rng = np.random.default_rng(0)
    v = rng.normal(size=(25, 8)).astype(np.float32)
    keys = [f"p{i}" for i in range(25)]
    with EmbeddingStoreWriter(tmp_path / "s", dim=8, dtype="float32", shard_size=10, model="m") as w:
        w.add(keys[:7], v[:7])
        w.add(keys[7:], v[7:])
    k, x = load_teacher_embeddings(tmp_path / "s")
    assert k == keys
    np.testing.assert_array_equal(x, v)
    assert [len(s[0]) for s in iter_teacher_shards(tmp_path / "s")] == [10, 10, 5]
    assert w.manifest["counts"]["rows"] == 25 and w.manifest["model"] == "m"
    assert load_reduction(tmp_path / "s")["method"] == "none"
    np.testing.assert_array_equal(restore_vectors(x, {"method": "none"}), x)


def test_float16_storage_returns_float32(tmp_path: Path):
    v = np.linspace(-1, 1, 32, dtype=np.float32).reshape(4, 8)
    with EmbeddingStoreWriter(tmp_path / "s", dim=8) as w:
        w.add(["a", "b", "c", "d"], v)
    _, x = load_teacher_embeddings(tmp_path / "s")
    assert x.dtype == np.float32
    np.testing.assert_allclose(x, v, atol=1e-3)
    assert read_shard(tmp_path / "s" / "shard-00000.arrow")[1].dtype == np.float32


def test_writer_refuses_duplicates_and_bad_shapes(tmp_path: Path):
    with pytest.raises(ValueError, match="duplicate key 'a'"):
        with EmbeddingStoreWriter(tmp_path / "s", dim=2) as w:
            w.add(["a", "b"], np.zeros((2, 2)))
            w.add(["a"], np.zeros((1, 2)))
    assert not (tmp_path / "s").exists()  # nothing half-written left in place
    with pytest.raises(ValueError, match=r"shape \(1, 2\)"):
        with EmbeddingStoreWriter(tmp_path / "s", dim=2) as w:
            w.add(["a"], np.zeros((1, 3)))


def test_missing_or_corrupt_shard_is_named(tmp_path: Path):
    with EmbeddingStoreWriter(tmp_path / "s", dim=2, shard_size=1) as w:
        w.add(["a", "b"], np.ones((2, 2)))
    (tmp_path / "s" / "shard-00001.arrow").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="shard-00001.arrow"):
        load_teacher_embeddings(tmp_path / "s")
    (tmp_path / "s" / "shard-00001.arrow").unlink()
    with pytest.raises(ArtifactError, match="shard-00001.arrow.*missing"):
        load_teacher_embeddings(tmp_path / "s")
    with pytest.raises(ArtifactError, match="manifest.json is missing"):
        load_teacher_embeddings(tmp_path)
