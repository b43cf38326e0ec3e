"""Optional reduction of the stored teacher dimension: PCA fitted on a sample, or Matryoshka truncation.

Why: a 7B teacher gives 3584-d vectors; 100M pairs at float16 is 700 GB. The student only needs
a target it can regress onto, so a 256-d PCA (or the prefix of a Matryoshka-trained model) keeps
most of the geometry at a fraction of the size. What it costs is measured, not assumed: the
cosine between each original vector and its reduced-then-restored version is accumulated over
every stored row and recorded in the manifest as ``fidelity``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from llm2ctr.errors import ConfigError

METHODS = ("none", "pca", "matryoshka")


def fit_reduction(sample: np.ndarray, method: str, dim: int, normalize: bool) -> dict[str, Any]:
    """Fit the reduction on ``sample`` [n, d]; returns a dict that apply/restore understand."""
    if method not in METHODS:
        raise ConfigError(f"teacher.reduction: expected one of {METHODS}, got {method!r}")
    d = sample.shape[1]
    if method == "none":
        return {"method": "none", "original_dim": d, "dim": d}
    if not 0 < dim < d:
        raise ConfigError(f"teacher.reduced_dim={dim} must be between 1 and the teacher dim {d} (exclusive)")
    if method == "matryoshka":
        return {"method": "matryoshka", "original_dim": d, "dim": dim, "renormalize": normalize}
    if dim > len(sample):
        raise ConfigError(f"teacher.reduced_dim={dim} needs a PCA sample of at least {dim} prompts, "
                         f"got {len(sample)} (raise teacher.pca_sample or lower reduced_dim)")
    from sklearn.decomposition import PCA

    pca = PCA(n_components=dim, svd_solver="full").fit(sample.astype(np.float64))
    return {
        "method": "pca", "original_dim": d, "dim": dim,
        "explained_variance": float(pca.explained_variance_ratio_.sum()),
        "components": pca.components_.astype(np.float32), "mean": pca.mean_.astype(np.float32),
    }


def apply_reduction(vectors: np.ndarray, red: dict[str, Any]) -> np.ndarray:
    if red["method"] == "pca":
        return (vectors - red["mean"]) @ red["components"].T
    if red["method"] == "matryoshka":
        out = vectors[:, : red["dim"]]
        if red.get("renormalize"):
            out = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out
    return vectors


def restore(reduced: np.ndarray, red: dict[str, Any]) -> np.ndarray:
    if red["method"] == "pca":
        return reduced @ red["components"] + red["mean"]
    if red["method"] == "matryoshka":
        out = np.zeros((len(reduced), red["original_dim"]), np.float32)
        out[:, : reduced.shape[1]] = reduced
        return out
    return reduced


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    num = np.einsum("ij,ij->i", a, b)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return num / np.maximum(den, 1e-12)


def fidelity(original: np.ndarray, stored: np.ndarray, red: dict[str, Any]) -> np.ndarray:
    """Cosine of restored-from-stored vs original, per row (stored = after the float16 cast)."""
    return cosine_rows(original.astype(np.float32), restore(stored.astype(np.float32), red))


def save_reduction(path: str | Path, red: dict[str, Any]) -> None:
    """Write the PCA basis (the only reduction with arrays) atomically as safetensors."""
    from safetensors.numpy import save

    from llm2ctr.artifacts import atomic_write_bytes

    arrays = {k: np.ascontiguousarray(red[k], dtype=np.float32) for k in ("components", "mean")}
    atomic_write_bytes(path, save(arrays))  # safetensors writes the raw buffer: must be C-contiguous


def public_record(red: dict[str, Any]) -> dict[str, Any]:
    """The reduction without its arrays (for manifests)."""
    return {k: v for k, v in red.items() if k not in ("components", "mean")}
