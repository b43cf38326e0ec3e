"""Numbered, atomically written chunk files that let a killed rag job continue where it stopped.

A chunk is either complete on disk or absent (written via temp name + rename), and the folder
carries a fingerprint of everything that decides a chunk's content (input hash, model, chunk
size...): a changed input or config wipes the folder instead of mixing results from two runs.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from llm2ctr.artifacts import atomic_write_bytes, atomic_write_json

FINGERPRINT = "fingerprint.json"


class ChunkStore:
    """``chunk-000000.npz`` files under ``root``, valid for one fingerprint."""

    def __init__(self, root: str | Path, fingerprint: dict[str, Any]) -> None:
        self.root = Path(root)
        self.fingerprint = json.loads(json.dumps(fingerprint, sort_keys=True, default=str))
        fp_path = self.root / FINGERPRINT
        if self.root.exists():
            try:
                old = json.loads(fp_path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                old = None
            if old != self.fingerprint:
                shutil.rmtree(self.root)
        if not self.root.exists():
            self.root.mkdir(parents=True)
            atomic_write_json(fp_path, self.fingerprint)

    def _path(self, i: int) -> Path:
        return self.root / f"chunk-{i:06d}.npz"

    def has(self, i: int) -> bool:
        return self._path(i).is_file()

    def done(self) -> int:
        return len(list(self.root.glob("chunk-*.npz")))

    def save(self, i: int, **arrays: np.ndarray) -> None:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(self._path(i), buf.getvalue())

    def load(self, i: int) -> dict[str, np.ndarray]:
        with np.load(self._path(i), allow_pickle=False) as z:
            return {name: z[name] for name in z.files}

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
