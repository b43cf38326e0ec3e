"""The training kit: exact-resume checkpoints, best-weights files and log truncation.

Why one kit: the teacher's LoRA adaptation, the student trainer and the ranker trainer all resume
after a kill the same way: an atomic checkpoint of weights + optimizer (+ scheduler, RNG state)
+ position, loaded back only through safetensors and ``torch.load(weights_only=True)``, and a
jsonl log cut back to the checkpoint's position so the redone steps are not logged twice. Each
trainer keeps its own position fields, file names and log rule; the mechanics live here.

A checkpoint is a folder (``CheckpointFiles`` names its three files): the weights as safetensors,
a ``torch.save`` dict (``optimizer``, ``scheduler``, ``<source>_rng``) and the position as JSON.
It is written by ``atomic_dir``, so a kill leaves the previous checkpoint or the new one, never a
mix. A damaged checkpoint raises ``ArtifactError`` naming it.

Bottom layer: imports torch, safetensors, the standard library and ``llm2ctr.artifacts`` only
(numpy only inside the numpy RNG branch), never a stage.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from safetensors.torch import save as save_safetensors

from llm2ctr.artifacts import (
    ArtifactError,
    atomic_dir,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    reading,
)

# RNG streams a checkpoint can carry; each trainer names the ones its results depend on.
RNG_SOURCES = ("torch", "cuda", "numpy", "python")

Weights = torch.nn.Module | Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class CheckpointFiles:
    """File names inside a checkpoint folder (trainers keep the names their tests and docs use)."""

    weights: str = "model.safetensors"
    state: str = "trainer_state.pt"  # optimizer, scheduler, RNG: torch.save, read with weights_only
    position: str = "position.json"


def state_tensors(model: Weights) -> dict[str, torch.Tensor]:
    """Detached contiguous copies (safetensors refuses shared or strided storage)."""
    items = model.state_dict().items() if isinstance(model, torch.nn.Module) else model.items()
    return {k: v.detach().contiguous().clone() for k, v in items}


def _rng_state(sources: Collection[str]) -> dict[str, Any]:
    unknown = set(sources) - set(RNG_SOURCES)
    if unknown:
        raise ValueError(f"unknown RNG source(s) {sorted(unknown)}; known: {RNG_SOURCES}")
    out: dict[str, Any] = {}
    if "torch" in sources:
        out["torch_rng"] = torch.get_rng_state()
    if "cuda" in sources and torch.cuda.is_available():
        out["cuda_rng"] = torch.cuda.get_rng_state_all()
    if "numpy" in sources:
        import numpy as np

        name, keys, pos, has_gauss, gauss = np.random.get_state()
        out["numpy_rng"] = {"name": name, "keys": torch.from_numpy(keys.astype("int64")), "pos": int(pos),
                            "has_gauss": int(has_gauss), "cached_gaussian": float(gauss)}
    if "python" in sources:
        version, internal, gauss_next = random.getstate()
        out["python_rng"] = {"version": version, "state": torch.tensor(internal, dtype=torch.int64),
                             "gauss_next": gauss_next}
    return out


def _set_rng_state(state: Mapping[str, Any]) -> None:
    if "torch_rng" in state:
        torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    if "numpy_rng" in state:
        import numpy as np

        s = state["numpy_rng"]
        np.random.set_state((s["name"], s["keys"].numpy().astype("uint32"), s["pos"], s["has_gauss"],
                             s["cached_gaussian"]))
    if "python_rng" in state:
        s = state["python_rng"]
        random.setstate((s["version"], tuple(s["state"].tolist()), s["gauss_next"]))


def save_checkpoint(
    directory: str | Path,
    model: Weights,
    optimizer: torch.optim.Optimizer,
    scheduler: Any = None,
    *,
    position: Mapping[str, Any],
    rng: Collection[str] = (),
    files: CheckpointFiles = CheckpointFiles(),
) -> None:
    """Write weights, optimizer (+ scheduler, the ``rng`` streams) and ``position`` atomically.

    ``model`` is a module or a name -> tensor mapping (e.g. LoRA weights + a head). ``rng`` names
    the streams of ``RNG_SOURCES`` to save: only those the trainer's later steps draw from, so a
    resume restores exactly what an uninterrupted run would have had.
    """
    state: dict[str, Any] = {"optimizer": optimizer.state_dict()}
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    state.update(_rng_state(rng))
    with atomic_dir(directory) as tmp:
        save_file(state_tensors(model), str(tmp / files.weights))
        torch.save(state, tmp / files.state)
        atomic_write_json(tmp / files.position, dict(position))


def read_position(directory: str | Path, files: CheckpointFiles = CheckpointFiles(),
                  what: str = "checkpoint") -> dict[str, Any] | None:
    """The position saved in a checkpoint, or None when there is no checkpoint (loads nothing else)."""
    path = Path(directory) / files.position
    if not path.is_file():
        return None
    with reading(directory, what):
        return json.loads(path.read_text(encoding="utf-8"))


def load_checkpoint(
    directory: str | Path,
    model: torch.nn.Module | Callable[[dict[str, torch.Tensor]], Any],
    optimizer: torch.optim.Optimizer,
    scheduler: Any = None,
    *,
    files: CheckpointFiles = CheckpointFiles(),
    what: str = "checkpoint",
) -> dict[str, Any]:
    """Restore weights, optimizer, scheduler and the saved RNG streams; return the position.

    ``model`` is a module or a function that takes the saved name -> tensor dict. Any failure
    (truncated file, missing key) raises ``ArtifactError`` naming ``directory`` and ``what``.
    """
    directory = Path(directory)
    with reading(directory, what):
        weights = load_file(str(directory / files.weights))
        if isinstance(model, torch.nn.Module):
            model.load_state_dict(weights)
        else:
            model(weights)
        state = torch.load(directory / files.state, map_location="cpu", weights_only=True)
        if "param_groups" in state:  # a ranker checkpoint from before the kit: the bare optimizer state
            state = {"optimizer": state}
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state)
        return json.loads((directory / files.position).read_text(encoding="utf-8"))


def save_weights(path: str | Path, model: Weights, metadata: Mapping[str, str] | None = None) -> None:
    """One safetensors file of ``model``'s weights, atomically (a kill leaves the old file or the new)."""
    atomic_write_bytes(path, save_safetensors(state_tensors(model), metadata=dict(metadata) if metadata else None))


def load_weights(path: str | Path, model: torch.nn.Module, *, what: str = "weights",
                 expect: Mapping[str, str] | None = None) -> dict[str, str]:
    """Load a ``save_weights`` file into ``model``; return its metadata.

    ``expect``: metadata the file must carry (e.g. the best epoch a checkpoint recorded); a file
    left by another run is refused with an ``ArtifactError`` instead of silently loaded.
    """
    path = Path(path)
    with reading(path, what):
        with safe_open(str(path), "pt") as fh:
            meta = dict(fh.metadata() or {})
        weights = load_file(str(path))
    for key, want in (expect or {}).items():
        if meta.get(key) != want:
            raise ArtifactError(f"{path}: {what} has {key} {meta.get(key)}, but {want} was expected; "
                                f"delete {path.parent} to retrain")
    model.load_state_dict(weights)
    return meta


def truncate_log(path: str | Path, keep: Callable[[dict[str, Any]], bool]) -> int:
    """Cut a jsonl training log back to a checkpoint: keep the records ``keep`` accepts (atomically).

    Returns how many lines were dropped. A torn last line (killed mid-write) is dropped: it was
    written after the checkpoint. A missing log is left missing.
    """
    path = Path(path)
    if not path.is_file():
        return 0
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise ArtifactError(f"{path}: line {i + 1} is not JSON; the training log is damaged "
                                f"(delete it, or the run folder to start over)") from None
        if keep(rec):
            kept.append(line)
    atomic_write_text(path, "".join(line + "\n" for line in kept))
    return len(lines) - len(kept)
