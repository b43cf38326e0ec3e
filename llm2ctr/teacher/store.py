"""The teacher embedding store: Arrow IPC shards of (pair_id, vector) plus a manifest.

Why shards: the embed job writes one shard at a time with an atomic rename, so a killed job
resumes at the first missing shard, and readers can stream a store far larger than memory.

Layout of a finished store (``{workdir}/teacher/embeddings``)::

    manifest.json          kind "teacher_embeddings"; "shards": [file names in order], "dim",
                           "dtype", "compression" ({"method": "none"|"pca"|"matryoshka", ...})
    shard-00000.arrow      columns pair_id (string), vector (fixed_size_list<float16|float32>[dim])
    reduction.safetensors  only for PCA: "components" [dim, orig_dim], "mean" [orig_dim]

:func:`load_teacher_embeddings` returns the *stored* vectors (reduced ones when the store was
reduced, as float32); :func:`load_reduction` / :func:`restore_vectors` map them back to the
teacher's original space when a consumer needs that.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from llm2ctr.artifacts import ArtifactError, atomic_dir, atomic_write_bytes, read_manifest, write_manifest
from llm2ctr.errors import ConfigError

KIND = "teacher_embeddings"
REDUCTION_FILE = "reduction.safetensors"
_DTYPES = {"float16": (np.float16, pa.float16()), "float32": (np.float32, pa.float32())}


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.arrow"


def _check_dtype(dtype: str) -> tuple[Any, pa.DataType]:
    if dtype not in _DTYPES:
        raise ConfigError(f"store dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    return _DTYPES[dtype]


def shard_bytes(keys: list[str], vectors: np.ndarray, dtype: str, metadata: dict[str, Any] | None = None) -> bytes:
    """Serialise one shard to Arrow IPC bytes (so the caller can write it atomically)."""
    np_dtype, pa_dtype = _check_dtype(dtype)
    vectors = np.ascontiguousarray(vectors, dtype=np_dtype)
    if vectors.ndim != 2 or vectors.shape[0] != len(keys):
        raise ValueError(f"shard: {len(keys)} keys but vectors of shape {vectors.shape}")
    values = pa.array(vectors.reshape(-1), type=pa_dtype)
    col = pa.FixedSizeListArray.from_arrays(values, vectors.shape[1])
    meta = {b"llm2ctr": json.dumps(metadata or {}).encode()}
    table = pa.table({"pair_id": pa.array(keys, pa.string()), "vector": col}).replace_schema_metadata(meta)
    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def write_shard(path: str | Path, keys: list[str], vectors: np.ndarray, dtype: str,
                metadata: dict[str, Any] | None = None) -> None:
    """Write one shard atomically: a reader (or a resumed job) sees all of it or none."""
    atomic_write_bytes(path, shard_bytes(keys, vectors, dtype, metadata))


def read_shard(path: str | Path) -> tuple[list[str], np.ndarray, dict[str, Any]]:
    """(keys, float32 vectors [n, d], shard metadata); errors name the file."""
    path = Path(path)
    try:
        with pa.memory_map(str(path), "r") as source:
            table = ipc.open_file(source).read_all()
    except (OSError, pa.ArrowInvalid) as exc:
        raise ArtifactError(f"{path}: not a readable teacher-embedding shard ({exc}); re-run the embed job") from None
    if table.column_names[:2] != ["pair_id", "vector"]:
        raise ArtifactError(f"{path}: expected columns [pair_id, vector], found {table.column_names}")
    vec = table.column("vector").combine_chunks()
    dim = vec.type.list_size
    flat = vec.flatten().to_numpy(zero_copy_only=False)
    vectors = flat.reshape(len(table), dim).astype(np.float32, copy=False)
    keys = table.column("pair_id").to_pylist()
    raw = (table.schema.metadata or {}).get(b"llm2ctr", b"{}")
    return keys, vectors, json.loads(raw)


def iter_teacher_shards(directory: str | Path) -> Iterator[tuple[list[str], np.ndarray]]:
    """Stream (keys, float32 vectors) shard by shard: for stores larger than memory."""
    directory = Path(directory)
    manifest = read_manifest(directory, KIND)
    for name in manifest["shards"]:
        path = directory / name
        if not path.is_file():
            raise ArtifactError(f"{path}: shard listed in {directory / 'manifest.json'} is missing")
        keys, vectors, _ = read_shard(path)
        if vectors.shape[1] != manifest["dim"]:
            raise ArtifactError(f"{path}: vectors have dim {vectors.shape[1]}, manifest says {manifest['dim']}")
        yield keys, vectors


def load_teacher_embeddings(directory: str | Path) -> tuple[list[str], np.ndarray]:
    """All keys (pair_ids) and stored vectors (float32 [n, d]) of a finished store.

    The vectors are those stored: for a reduced store they are the reduced ones (``d`` is the
    manifest's ``dim``); use :func:`restore_vectors` for the original space.
    """
    directory = Path(directory)
    manifest = read_manifest(directory, KIND)
    keys: list[str] = []
    parts: list[np.ndarray] = []
    for k, v in iter_teacher_shards(directory):
        keys.extend(k)
        parts.append(v)
    vectors = np.concatenate(parts) if parts else np.zeros((0, manifest["dim"]), np.float32)
    expected = manifest.get("counts", {}).get("rows")
    if expected is not None and expected != len(keys):
        raise ArtifactError(f"{directory}: shards hold {len(keys)} rows, manifest says {expected}")
    return keys, vectors


def load_reduction(directory: str | Path) -> dict[str, Any]:
    """The store's compression record; for PCA also the numpy ``components`` and ``mean``."""
    directory = Path(directory)
    comp = dict(read_manifest(directory, KIND).get("compression", {"method": "none"}))
    if comp.get("method") == "pca":
        from safetensors.numpy import load_file

        arrays = load_file(str(directory / REDUCTION_FILE))
        comp["components"], comp["mean"] = arrays["components"], arrays["mean"]
    return comp


def restore_vectors(vectors: np.ndarray, reduction: dict[str, Any]) -> np.ndarray:
    """Map stored (reduced) vectors back to the teacher's space (approximately; see fidelity)."""
    from llm2ctr.teacher.reduction import restore

    return restore(vectors, reduction)


class EmbeddingStoreWriter:
    """Create a finished store directly (tests of later stages, imports of external embeddings).

    Use as a context manager; ``add`` buffers rows and writes full shards; leaving the block
    without an exception writes the manifest and renames the store into place atomically.
    """

    def __init__(self, directory: str | Path, *, dim: int, dtype: str = "float16", shard_size: int = 8192,
                 stage: str = "teacher", config: Any = None, **manifest_fields: Any) -> None:
        _check_dtype(dtype)
        self.directory, self.dim, self.dtype, self.shard_size = Path(directory), int(dim), dtype, int(shard_size)
        self.stage, self.config, self.fields = stage, config, manifest_fields
        self._keys: list[str] = []
        self._vecs: list[np.ndarray] = []
        self._buffered = 0
        self._shards: list[str] = []
        self._rows = 0
        self._seen: set[str] = set()
        self._ctx: Any = None
        self._tmp: Path | None = None
        self.manifest: dict[str, Any] | None = None

    def __enter__(self) -> EmbeddingStoreWriter:
        self._ctx = atomic_dir(self.directory)
        self._tmp = self._ctx.__enter__()
        return self

    def add(self, keys: list[str], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape != (len(keys), self.dim):
            raise ValueError(f"add: expected vectors of shape ({len(keys)}, {self.dim}), got {vectors.shape}")
        for k in keys:
            if k in self._seen:
                raise ValueError(f"add: duplicate key {k!r}; a store holds each pair_id once")
            self._seen.add(k)
        self._keys.extend(keys)
        self._vecs.append(vectors)
        self._buffered += len(keys)
        while self._buffered >= self.shard_size:
            self._flush(self.shard_size)

    def _flush(self, n: int) -> None:
        if self._tmp is None:
            raise RuntimeError("EmbeddingStoreWriter must be used as a context manager")
        allv = np.concatenate(self._vecs) if self._vecs else np.zeros((0, self.dim))
        keys, rest_keys = self._keys[:n], self._keys[n:]
        name = shard_name(len(self._shards))
        write_shard(self._tmp / name, keys, allv[:n], self.dtype)
        self._shards.append(name)
        self._rows += len(keys)
        self._keys, self._vecs, self._buffered = rest_keys, [allv[n:]], len(rest_keys)

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        try:
            if et is None:
                if self._buffered:
                    self._flush(self._buffered)
                fields = {"dim": self.dim, "dtype": self.dtype, "compression": {"method": "none"},
                          **self.fields, "shards": self._shards}
                self.manifest = write_manifest(self._tmp, kind=KIND, stage=self.stage, config=self.config,
                                               counts={"rows": self._rows}, **fields)
        finally:
            self._ctx.__exit__(et, ev, tb)
