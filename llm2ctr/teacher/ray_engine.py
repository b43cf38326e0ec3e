"""``teacher.engine: ray``: the embed job's shards, embedded by a pool of Ray Data actors.

The driver plans exactly as the local job does (dedupe, length sort, shards: ``embed_job``); Ray Data
hands each unfinished shard to an actor that holds one teacher backend (a vLLM engine per GPU on a
cluster, the hf backend on CPUs) and writes it with the local job's own function (``shard_writer``), so the store is
the local store byte for byte. Ray restarts a dead actor and retries its shard; a shard is written
with one atomic rename and a retry finds it done, so rows are never lost or written twice. A driver
that dies leaves finished shards on disk, and the re-run skips them.

Actors write into the store's work folder: on a multi-node cluster it must be on storage every
node mounts (NFS, a shared volume), the same path everywhere.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from llm2ctr.errors import OptionalDependencyError
from llm2ctr.teacher.config import TeacherConfig
from llm2ctr.teacher.shard_writer import batch_step, shard_meta, write_embedded_shard
from llm2ctr.teacher.store import shard_name

log = logging.getLogger(__name__)
INSTALL_HINT = "pip install 'llm2ctr[ray]'  (or: pip install 'ray[data]')"


def import_ray():
    """The ``ray`` module, or an error that says how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise OptionalDependencyError(f"teacher.engine=ray needs Ray Data, which is not installed: {INSTALL_HINT}; "
                                      "or set teacher.engine=local") from None
    return ray


@contextlib.contextmanager
def ray_session(cfg: TeacherConfig) -> Iterator[Any]:
    """Connect to ``teacher.ray_address`` ("" starts a Ray instance on this machine); an already
    initialised Ray (a test, a notebook, a job submitted to a cluster) is used as it is and left running."""
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=cfg.ray_address or None, include_dashboard=False, configure_logging=False,
                 log_to_driver=False)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _remote_args(cfg: TeacherConfig) -> dict[str, Any]:
    args: dict[str, Any] = {"num_cpus": cfg.ray_cpus_per_actor}
    if cfg.ray_gpus_per_actor:
        args["num_gpus"] = cfg.ray_gpus_per_actor
    return args


class ShardEmbedder:
    """A Ray Data actor: one teacher backend, kept for every shard the actor is given."""

    def __init__(self, backend_factory: Callable[[], Any], work: str, red: dict[str, Any] | None, store_dtype: str,
                 step: int) -> None:
        self.backend = backend_factory()
        self.work, self.red, self.store_dtype, self.step = Path(work), red, store_dtype, step

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows, tokens = [], []
        for i, s in enumerate(batch["shard"]):
            path = self.work / shard_name(int(s))
            if path.is_file():  # a retried task whose first attempt finished the write
                meta = shard_meta(path)
            else:
                payload = {"prompts": [str(p) for p in batch["prompts"][i]],
                           "keys": [str(k) for k in batch["keys"][i]], "counts": batch["counts"][i]}
                meta = write_embedded_shard(path, self.backend, payload, self.red, self.store_dtype, self.step)
            rows.append(meta["rows"])
            tokens.append(meta["tokens"])
        return {"shard": np.asarray(batch["shard"]), "rows": np.asarray(rows), "tokens": np.asarray(tokens)}


def embed_shards_on_ray(cfg: TeacherConfig, payloads: list[dict[str, Any]], work: Path,
                        backend_factory: Callable[[], Any], red: dict[str, Any] | None,
                        store_dtype: str) -> Iterator[tuple[int, int]]:
    """Embed and write every shard of ``payloads``; yields (rows, tokens) as each shard finishes."""
    if not payloads:
        return
    ray = import_ray()
    ray.data.DataContext.get_current().enable_progress_bars = False  # the job's own bar counts pairs
    ds = ray.data.from_items(payloads, override_num_blocks=len(payloads))
    done = ds.map_batches(
        ShardEmbedder, batch_size=1, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=cfg.ray_actors),
        fn_constructor_kwargs={"backend_factory": backend_factory, "work": str(work), "red": red,
                               "store_dtype": store_dtype, "step": batch_step(cfg)},
        **_remote_args(cfg),
    )
    for row in done.iter_rows():
        yield int(row["rows"]), int(row["tokens"])


def _embed_once(backend_factory: Callable[[], Any], prompts: list[str]) -> np.ndarray:
    backend = backend_factory()
    try:
        return backend.embed(prompts)
    finally:
        backend.close()


def embed_sample_on_ray(cfg: TeacherConfig, backend_factory: Callable[[], Any], prompts: list[str]) -> np.ndarray:
    """Embed a small sample (the reduction's fit sample) in one Ray task with an actor's resources."""
    ray = import_ray()
    task = ray.remote(_embed_once).options(**_remote_args(cfg), max_retries=3)
    return ray.get(task.remote(backend_factory, prompts))
