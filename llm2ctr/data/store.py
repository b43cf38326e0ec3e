"""Read and write tables as HF ``datasets`` Arrow folders with a manifest, atomically.

With schema.py, the data stage's door for other stages: the readers of every data artifact
(pairs, events, history, ground_truth) live here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa

from llm2ctr.artifacts import ArtifactError, atomic_dir, read_manifest, write_manifest
from llm2ctr.data.schema import EVENTS_SCHEMA, PAIRS_SCHEMA, conform

_SCHEMAS = {"pairs": PAIRS_SCHEMA, "events": EVENTS_SCHEMA}


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """``save_to_disk`` draws a progress bar per table; ours are enough."""
    enabled = datasets.utils.logging.is_progress_bar_enabled()
    datasets.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            datasets.utils.logging.enable_progress_bar()


def save_table(
    table: pa.Table | datasets.Dataset,
    directory: str | Path,
    *,
    kind: str,
    stage: str,
    config: Any = None,
    inputs: dict[str, str | Path] | None = None,
    counts: dict[str, int] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Save ``table`` with ``save_to_disk`` into a temp dir, add the manifest, rename into place."""
    if isinstance(table, pa.Table):
        if kind in _SCHEMAS:
            table = conform(table, _SCHEMAS[kind], f"{kind} table for {directory}")
        ds = datasets.Dataset(table)
    else:
        ds = table
    counts = {"rows": len(ds), **(counts or {})}
    with atomic_dir(directory) as tmp, _quiet_datasets():
        ds.save_to_disk(str(tmp))
        manifest = write_manifest(
            tmp, kind=kind, stage=stage, config=config, inputs=inputs, counts=counts, **fields
        )
    return manifest


def load_dataset_dir(directory: str | Path, kind: str) -> datasets.Dataset:
    """Load a saved table after checking its manifest (kind and schema version)."""
    read_manifest(directory, kind)
    return datasets.load_from_disk(str(directory))


def load_table(directory: str | Path, kind: str) -> pa.Table:
    """The whole table as a pyarrow Table (memory-mapped; cheap for large folders)."""
    return load_dataset_dir(directory, kind).data.table


def load_pairs(directory: str | Path) -> pa.Table:
    return load_table(directory, "pairs")


def load_events(directory: str | Path) -> pa.Table:
    return load_table(directory, "events")


def load_ground_truth(directory: str | Path) -> tuple[pa.Table, pa.Table, dict[str, Any]]:
    """(users, per-event truth in events order, params) from a ground_truth artifact."""
    import json

    directory = Path(directory)
    read_manifest(directory, "ground_truth")
    users = datasets.load_from_disk(str(directory / "users")).data.table
    events = datasets.load_from_disk(str(directory / "events")).data.table
    return users, events, json.loads((directory / "params.json").read_text(encoding="utf-8"))


def load_event_truth(directory: str | Path) -> pa.Table:
    """Per-event truth in data/events order (p_click and its parts); empty if the artifact has none."""
    directory = Path(directory)
    read_manifest(directory, "ground_truth")
    if not (directory / "events").is_dir():
        return pa.table({})
    return datasets.load_from_disk(str(directory / "events")).data.table


def load_request_truth(directory: str | Path) -> pa.Table:
    """Per-request truth (request-id order): user, day, query type, sensitivity and its parts,
    exploration flag; what the oracle gains of cold-start mining and the gate are computed from."""
    directory = Path(directory)
    read_manifest(directory, "ground_truth")
    if not (directory / "requests").is_dir():
        raise ArtifactError(f"{directory}: no 'requests' table; it was written by an older simulator, "
                            "re-run `llm2ctr data simulate`")
    return datasets.load_from_disk(str(directory / "requests")).data.table
