"""Join the parts written by ``teacher embed --shard i/n`` into one store.

Parts partition the unique prompts by a stable hash, so their keys are disjoint by construction;
the merge checks that all n parts are present once, that they were made with the same teacher,
template and reduction (a PCA basis must be byte-identical), and hard-links (or copies) their
shards into a new store with one manifest.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from llm2ctr.artifacts import ArtifactError, atomic_dir, read_manifest, write_manifest
from llm2ctr.teacher.store import KIND, REDUCTION_FILE, shard_name

_SAME = ("model", "model_fingerprint", "backend", "pooling", "normalize", "template", "template_hash", "dim",
         "dtype", "inputs_hash")


def find_parts(out: Path) -> list[Path]:
    """``embeddings.part-*-of-*`` folders next to ``out`` (finished or not)."""
    return sorted(p for p in out.parent.glob(f"{out.name}.part-*-of-*") if p.is_dir())


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def merge_parts(parts: list[Path], out: Path) -> dict[str, Any]:
    """Merge finished part stores into ``out`` (atomic); errors name the part and the field."""
    if not parts:
        raise ArtifactError(f"no parts to merge next to {out} (expected {out.name}.part-I-of-N folders)")
    manifests = [read_manifest(p, KIND) for p in parts]
    for p, m in zip(parts, manifests, strict=True):
        if not m.get("part"):
            raise ArtifactError(f"{p}: not a part of a sharded job (its manifest has no 'part')")
    n = manifests[0]["part"]["count"]
    seen = sorted(m["part"]["index"] for m in manifests)
    if seen != list(range(n)) or any(m["part"]["count"] != n for m in manifests):
        raise ArtifactError(f"merge needs parts 0..{n - 1} of {n} exactly once; found indices {seen} in "
                            f"{[str(p) for p in parts]}")
    ref = manifests[0]
    for p, m in zip(parts, manifests, strict=True):
        for f in _SAME:
            if m.get(f) != ref.get(f):
                raise ArtifactError(f"{p}: {f}={m.get(f)!r} differs from {parts[0]}: {ref.get(f)!r}")
        if m["compression"].get("method") != ref["compression"].get("method"):
            raise ArtifactError(f"{p}: compression differs from {parts[0]}")
    pca = ref["compression"].get("method") == "pca"
    if pca:
        basis = (parts[0] / REDUCTION_FILE).read_bytes()
        for p in parts[1:]:
            if (p / REDUCTION_FILE).read_bytes() != basis:
                raise ArtifactError(f"{p}: its PCA basis differs from {parts[0]}'s (the backends gave different "
                                    "vectors for the PCA sample); re-run the parts on identical hardware/settings")
    counts = {k: sum(m["counts"].get(k, 0) for m in manifests)
              for k in ("rows", "unique_prompts", "tokens")}
    counts["pairs_total"] = ref["counts"].get("pairs_total", 0)
    if counts["rows"] != counts["pairs_total"]:
        raise ArtifactError(f"{out}: merged parts hold {counts['rows']} rows but the job had "
                            f"{counts['pairs_total']} pairs; were the parts made from the same pairs?")
    order = sorted(range(len(parts)), key=lambda i: manifests[i]["part"]["index"])
    shards: list[str] = []
    with atomic_dir(out) as tmp:
        for i in order:
            for name in manifests[i]["shards"]:
                new = shard_name(len(shards))
                _link_or_copy(parts[i] / name, tmp / new)
                shards.append(new)
        if pca:
            shutil.copy2(parts[0] / REDUCTION_FILE, tmp / REDUCTION_FILE)
        compression = dict(ref["compression"])
        fids = [m["compression"].get("fidelity") for m in manifests]
        if all(fids):
            rows = sum(f["rows"] for f in fids)
            compression["fidelity"] = {"mean_cosine": sum(f["mean_cosine"] * f["rows"] for f in fids) / rows,
                                       "min_cosine": min(f["min_cosine"] for f in fids), "rows": rows}
        extra = {k: ref.get(k) for k in ("model", "model_revision", "model_fingerprint", "backend", "pooling",
                                          "normalize", "template", "template_hash", "inputs_hash")}
        manifest = write_manifest(tmp, kind=KIND, stage="teacher", config=ref.get("config"), counts=counts,
                                  dim=ref["dim"], dtype=ref["dtype"], compression=compression, shards=shards,
                                  part=None, merged_from=[str(p) for p in parts], **extra)
    return {"out": str(out), "rows": counts["rows"], "parts": len(parts), "content_hash": manifest["content_hash"]}
