"""Artifact directories shared by every stage: ``manifest.json``, content hashes, atomic writes.

A stage writes into a temporary sibling directory and renames it into place only when complete,
so a killed job never leaves a half-written artifact that a later stage could mistake for a
finished one. The manifest records where an artifact came from so a stage can refuse inputs it
does not understand and the pipeline can skip a stage whose inputs and config are unchanged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llm2ctr.errors import ArtifactError, MissingArtifactError  # ArtifactError: importable here as before

MANIFEST = "manifest.json"
# Schema versions each artifact kind is written with; a reader refuses any other version.
SCHEMA_VERSIONS: dict[str, int] = {
    "pairs": 1,
    "events": 1,
    "history": 1,
    "ground_truth": 1,
    "catalogue": 1,
    "rag_index": 1,
    "neighbours": 1,
    "teacher_embeddings": 1,
    "teacher_adapter": 1,
    "student": 2,  # 2: stock BERT layout (student/artifact.py)
    "student_tokenizer": 2,  # 2: one segment, deterministic vocabulary (student/tokenization.py)
    "student_eval": 1,
    "ctr": 1,
    "report": 1,
}
# kinds written under an earlier name: read as the new one (workdirs made before the rename stay valid)
RENAMED_KINDS = {"ranker": "ctr"}


def package_version() -> str:
    from llm2ctr import __version__

    return __version__


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write a file via a temporary name + fsync + rename (readers see old or new, never half)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise OSError(errno.ENOSPC, "No space left on device", str(path)) from exc
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def replace_dir(src: Path, final: Path) -> None:
    """Move a finished directory ``src`` to ``final``, replacing what was there, by renames only."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(final, old)
    os.replace(src, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(final: str | Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces ``final`` in one rename.

    On an exception (or a kill) the temporary directory is removed or left as ``.name.tmp-*``,
    which no reader ever opens; ``final`` is untouched.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists() and not overwrite:
        raise ArtifactError(f"{final} already exists (pass overwrite to replace it)")
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        yield tmp
        replace_dir(tmp, final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno == errno.ENOSPC:  # say which artifact; libraries often drop the file name
            raise OSError(errno.ENOSPC, "No space left on device", str(final)) from exc
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def reading(path: str | Path, what: str = "checkpoint") -> Iterator[None]:
    """Turn any failure while loading ``path`` into an ArtifactError that names it.

    A truncated safetensors file or a half-written pickle otherwise surfaces as a bare library
    error that does not say which file is damaged or what to do about it.
    """
    try:
        yield
    except ArtifactError:
        raise
    except Exception as exc:
        raise ArtifactError(
            f"{Path(path)}: {what} is damaged or truncated ({type(exc).__name__}: {exc}); "
            f"delete it to start over"
        ) from exc


def hash_files(root: str | Path, skip: tuple[str, ...] = (MANIFEST,)) -> str:
    """sha256 over the relative names and bytes of every file under ``root`` (sorted)."""
    root = Path(root)
    h = hashlib.sha256()
    for p in sorted(x for x in root.rglob("*") if x.is_file()):
        rel = p.relative_to(root).as_posix()
        if rel in skip or any(part.startswith(".") for part in p.relative_to(root).parts):
            continue
        h.update(rel.encode())
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def input_ref(path: str | Path) -> dict[str, str]:
    """How a manifest refers to an input artifact: its path and content hash."""
    m = read_manifest(path)
    return {"path": str(Path(path)), "kind": m["kind"], "content_hash": m["content_hash"]}


def write_manifest(
    directory: str | Path,
    *,
    kind: str,
    stage: str,
    config: Any = None,
    inputs: dict[str, str | Path] | None = None,
    counts: dict[str, int] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Write ``manifest.json`` into ``directory`` (hashing its current files) and return it."""
    if kind not in SCHEMA_VERSIONS:
        raise ValueError(f"unknown artifact kind {kind!r}; known: {sorted(SCHEMA_VERSIONS)}")
    directory = Path(directory)
    cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config
    manifest = {
        "kind": kind,
        "schema_version": SCHEMA_VERSIONS[kind],
        "stage": stage,
        "package_version": package_version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": cfg,
        "config_hash": _hash_obj(cfg),
        "inputs": {name: input_ref(p) for name, p in (inputs or {}).items()},
        "counts": dict(counts or {}),
        "content_hash": hash_files(directory),
        **fields,
    }
    atomic_write_json(directory / MANIFEST, manifest)
    return manifest


def _hash_obj(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, default=_json_default).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def read_manifest(directory: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Read and check a manifest; the error names the file and says what is wrong."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not directory.exists():
        raise MissingArtifactError(f"{directory}: artifact directory does not exist")
    if not path.is_file():
        raise ArtifactError(
            f"{path}: manifest.json is missing, so {directory} is not a finished llm2ctr artifact "
            "(was the stage that writes it interrupted? re-run it)"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: manifest is not valid JSON ({exc}); the artifact is corrupted") from None
    got = RENAMED_KINDS.get(manifest.get("kind"), manifest.get("kind"))
    if kind is not None and got != kind:
        raise ArtifactError(f"{path}: expected an artifact of kind '{kind}', found '{got}'")
    version = manifest.get("schema_version")
    known = SCHEMA_VERSIONS.get(got)
    if known is None or version != known:
        raise ArtifactError(
            f"{path}: kind '{got}' schema version {version} is not one this llm2ctr "
            f"({package_version()}) reads (expects {known}); re-create it with this version"
        )
    return manifest


def verify_content(directory: str | Path) -> None:
    """Re-hash an artifact's files and compare with its manifest (detects truncation/corruption)."""
    m = read_manifest(directory)
    actual = hash_files(directory)
    if actual != m["content_hash"]:
        raise ArtifactError(
            f"{Path(directory)}: files do not match the content hash in its manifest "
            "(truncated or modified after it was written); re-create the artifact"
        )


def is_up_to_date(directory: str | Path, kind: str, config: Any, inputs: dict[str, str | Path]) -> bool:
    """True if ``directory`` holds a finished artifact made from the same config and inputs."""
    try:
        m = read_manifest(directory, kind)
    except ArtifactError:
        return False
    cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config
    if m.get("config_hash") != _hash_obj(cfg):
        return False
    try:
        refs = {name: input_ref(p)["content_hash"] for name, p in inputs.items()}
    except ArtifactError:
        return False
    return refs == {name: ref["content_hash"] for name, ref in m.get("inputs", {}).items()}
