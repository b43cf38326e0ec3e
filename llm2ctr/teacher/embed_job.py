"""The resumable teacher embedding job: prompts -> unique, length-sorted shards -> store.

How it stays correct when killed at any moment:

* the plan is a pure function of the inputs and the config: identical prompts are embedded once
  (``pandas.factorize``), unique prompts are sorted by length (stable, so ties keep first-seen
  order), cut into shards of ``shard_size`` prompts, each shard into batches of ``batch_size``;
* shards are written into a hidden work directory named by a hash of everything that changes the
  output (``.embeddings.work-<key>``), one atomic rename each; a restart skips finished shards;
* when all shards exist the manifest is written and the work directory is renamed to the store.

``--shard i/n`` keeps only the unique prompts whose hash is ``i`` modulo ``n`` (so duplicates never
straddle parts) and writes ``embeddings.part-i-of-n``; :func:`llm2ctr.teacher.merge.merge_parts`
joins the parts into one store.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.ipc as ipc
from tqdm.auto import tqdm

from llm2ctr.artifacts import atomic_write_json, replace_dir, write_manifest
from llm2ctr.errors import ConfigError, InputError
from llm2ctr.teacher import reduction as R
from llm2ctr.teacher.config import TeacherConfig
from llm2ctr.teacher.shard_writer import batch_step, shard_meta, write_embedded_shard
from llm2ctr.teacher.store import KIND, REDUCTION_FILE, shard_name

log = logging.getLogger(__name__)
PLAN_FILE = "plan.json"
ENGINES = ("local", "ray")  # who runs the shards: this process, or a Ray Data actor pool (ray_engine)


@dataclass
class Plan:
    """Unique prompts in embedding order and the pairs rows that share each of them."""

    prompts: list[str]  # unique prompts of this part, length-sorted
    rows: np.ndarray  # pairs row indices grouped by prompt: prompt j owns rows[offsets[j]:offsets[j + 1]]
    offsets: np.ndarray  # int64 [len(prompts) + 1]
    sample: list[str]  # PCA sample (the same in every part)
    n_pairs_total: int
    n_unique_total: int

    def pairs_in(self, lo: int, hi: int) -> int:
        return int(self.offsets[hi] - self.offsets[lo])


def parse_part(spec: str | None) -> tuple[int, int] | None:
    """``"i/n"`` (0-based i) -> (i, n); None or ``"0/1"`` -> None."""
    if not spec:
        return None
    try:
        i_s, n_s = spec.split("/")
        i, n = int(i_s), int(n_s)
    except ValueError:
        raise InputError(f"--shard expects i/n with 0 <= i < n (e.g. 0/4), got {spec!r}") from None
    if not 0 <= i < n:
        raise InputError(f"--shard expects i/n with 0 <= i < n (e.g. 0/4), got {spec!r}")
    return None if n == 1 else (i, n)


def prompt_hashes(prompts: list[str]) -> np.ndarray:
    """Stable 64-bit hashes (not Python's salted hash) so every machine agrees on the partition."""
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(p.encode(), digest_size=8).digest(), "little") for p in prompts),
        np.uint64, len(prompts),
    )


def make_plan(prompts: list[str], part: tuple[int, int] | None, pca_sample: int) -> Plan:
    """Dedupe, partition and length-sort the prompts (vectorised; O(n log n))."""
    import pandas as pd

    codes, uniques = pd.factorize(pd.Series(prompts, dtype=object), sort=False)
    uniques = list(uniques)
    n_u = len(uniques)
    need_hash = part is not None or pca_sample > 0
    hashes = prompt_hashes(uniques) if need_hash else None
    sample: list[str] = []
    if pca_sample > 0:
        sample = [uniques[j] for j in np.argsort(hashes, kind="stable")[:pca_sample]]
    keep = np.arange(n_u)
    if part is not None:
        keep = keep[(hashes % np.uint64(part[1])) == np.uint64(part[0])]
    lengths = np.fromiter((len(uniques[j]) for j in keep), np.int64, len(keep))
    keep = keep[np.argsort(lengths, kind="stable")]
    rank_of_code = np.full(n_u, -1, np.int64)
    rank_of_code[keep] = np.arange(len(keep))
    pair_rank = rank_of_code[codes]
    mine = np.flatnonzero(pair_rank >= 0)
    rows = mine[np.argsort(pair_rank[mine], kind="stable")]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(pair_rank[mine], minlength=len(keep)))]).astype(np.int64)
    return Plan([uniques[j] for j in keep], rows, offsets, sample, len(prompts), n_u)


def model_fingerprint(model: str, revision: str) -> str:
    """A local folder's config + weight sizes, or the hub id@revision: recorded so stores differ."""
    p = Path(model)
    if p.is_dir():
        h = hashlib.sha256()
        for f in sorted(p.rglob("*")):
            if f.is_file() and (f.suffix in (".json", ".safetensors", ".bin") or f.name == "tokenizer.model"):
                h.update(f.relative_to(p).as_posix().encode())
                h.update(f.read_bytes() if f.suffix == ".json" else str(f.stat().st_size).encode())
        return "local:" + h.hexdigest()[:16]
    return f"{model}@{revision or 'main'}"


def job_key(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _prepare_workdir(out: Path, key: str) -> Path:
    """The work dir for this key; stale ones of other keys (other config/inputs) are removed."""
    work = out.with_name(f".{out.name}.work-{key}")
    for old in out.parent.glob(f".{out.name}.work-*"):
        if old != work:
            log.info("removing stale partial run %s (different config or inputs)", old)
            shutil.rmtree(old, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    return work


class _Rate:
    """pairs/s and tokens/s of this run (excluding shards finished before a restart)."""

    def __init__(self) -> None:
        self.t0, self.pairs, self.tokens = time.perf_counter(), 0, 0

    def add(self, pairs: int, tokens: int) -> dict[str, str]:
        self.pairs += pairs
        self.tokens += tokens
        dt = max(time.perf_counter() - self.t0, 1e-9)
        return {"pairs/s": f"{self.pairs / dt:,.0f}", "tok/s": f"{self.tokens / dt:,.0f}"}


def embed_store(
    cfg: TeacherConfig,
    pair_ids: list[str],
    prompts: list[str],
    out: Path,
    *,
    backend_factory,
    identity: dict[str, Any],
    part: tuple[int, int] | None = None,
    inputs: dict[str, Path] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Embed ``prompts`` (one per pair) into a finished store at ``out``; resumes a killed run.

    ``backend_factory()`` is only called when something is left to embed. ``identity`` holds what
    besides ``cfg`` decides the output (input hashes, model fingerprint, template hash).
    """
    method = cfg.reduction
    if method not in R.METHODS:
        raise ConfigError(f"teacher.reduction: expected one of {R.METHODS}, got {method!r}")
    if cfg.engine not in ENGINES:
        raise ConfigError(f"teacher.engine: expected one of {ENGINES}, got {cfg.engine!r}")
    session = contextlib.nullcontext()
    if cfg.engine == "ray":
        from llm2ctr.teacher.ray_engine import ray_session

        session = ray_session(cfg)
    with session:
        return _embed_store(cfg, pair_ids, prompts, out, backend_factory=backend_factory, identity=identity,
                            part=part, inputs=inputs, progress=progress)


def _embed_store(cfg: TeacherConfig, pair_ids: list[str], prompts: list[str], out: Path, *, backend_factory,
                 identity: dict[str, Any], part: tuple[int, int] | None, inputs: dict[str, Path] | None,
                 progress: bool) -> dict[str, Any]:
    method = cfg.reduction
    plan = make_plan(prompts, part, cfg.pca_sample if method == "pca" else 0)
    key = job_key({"cfg": {k: getattr(cfg, k) for k in _OUTPUT_FIELDS}, "id": identity, "part": part})
    work = _prepare_workdir(out, key)
    n_shards = (len(plan.prompts) + cfg.shard_size - 1) // cfg.shard_size
    atomic_write_json(work / PLAN_FILE, {"key": key, "n_shards": n_shards, "unique_prompts": len(plan.prompts)})
    store_dtype = "float16" if method != "none" else cfg.store_dtype
    todo = [s for s in range(n_shards) if not (work / shard_name(s)).is_file()]
    backend = None
    red: dict[str, Any] | None = None
    red_json = work / "reduction.json"
    try:
        if method == "pca" and red_json.is_file():
            from safetensors.numpy import load_file

            red = json.loads(red_json.read_text()) | load_file(str(work / REDUCTION_FILE))
        need_fit = red is None and method != "none" and not red_json.is_file()
        if cfg.engine != "ray" and (todo or need_fit):
            backend = backend_factory()

        def embed_sample(sample: list[str]) -> np.ndarray:
            if cfg.engine == "ray":  # the driver may have no accelerator: one Ray task embeds the sample
                from llm2ctr.teacher.ray_engine import embed_sample_on_ray

                return embed_sample_on_ray(cfg, backend_factory, sample)
            return backend.embed(sample)

        if need_fit:
            if method == "pca":
                red = R.fit_reduction(embed_sample(plan.sample), "pca", cfg.reduced_dim, cfg.normalize)
                R.save_reduction(work / REDUCTION_FILE, red)
                atomic_write_json(red_json, R.public_record(red))
            elif method == "matryoshka":
                probe = embed_sample(plan.prompts[:1] or ["probe"])
                red = R.fit_reduction(probe, method, cfg.reduced_dim, cfg.normalize)
                atomic_write_json(red_json, red)
        if red is None and red_json.is_file():
            red = json.loads(red_json.read_text())
        todo_set = set(todo)
        done_pairs = sum(shard_meta(work / shard_name(s))["rows"] for s in range(n_shards) if s not in todo_set)
        bar = tqdm(total=len(plan.rows), initial=done_pairs, unit="pair", disable=not progress,
                   desc=f"teacher embed{'' if part is None else f' part {part[0]}/{part[1]}'}", smoothing=0.1)
        rate = _Rate()
        if cfg.engine == "ray":
            from llm2ctr.teacher.ray_engine import embed_shards_on_ray

            for rows, tokens in embed_shards_on_ray(cfg, [shard_payload(plan, pair_ids, s, cfg.shard_size)
                                                          for s in todo], work, backend_factory, red, store_dtype):
                bar.set_postfix(rate.add(rows, tokens), refresh=False)
                bar.update(rows)
        else:
            def on_batch(rows: int, tokens: int) -> None:
                bar.set_postfix(rate.add(rows, tokens), refresh=False)
                bar.update(rows)

            for s in todo:
                write_embedded_shard(work / shard_name(s), backend, shard_payload(plan, pair_ids, s, cfg.shard_size),
                                     red, store_dtype, batch_step(cfg), on_batch)
        bar.close()
    finally:
        if backend is not None:
            backend.close()
    return _finalize(cfg, work, out, n_shards, plan, red, store_dtype, identity, part, inputs or {}, rate)


def shard_payload(plan: Plan, pair_ids: list[str], s: int, shard_size: int) -> dict[str, Any]:
    """Everything needed to embed and write shard ``s``: its unique prompts, the pair keys of every
    row and how many rows share each prompt (so a worker needs no plan)."""
    lo, hi = s * shard_size, min((s + 1) * shard_size, len(plan.prompts))
    rows_idx = plan.rows[plan.offsets[lo]:plan.offsets[hi]]
    return {"shard": s, "prompts": plan.prompts[lo:hi], "keys": [pair_ids[i] for i in rows_idx],
            "counts": np.diff(plan.offsets[lo:hi + 1])}


# TeacherConfig fields that change the stored vectors (concurrency, timeouts, api keys do not).
_OUTPUT_FIELDS = ("backend", "model", "revision", "pooling", "normalize", "batch_size", "shard_size",
                  "max_model_len", "dtype", "hf_impl", "reduction", "reduced_dim", "pca_sample", "store_dtype",
                  "use_adapter", "api_base", "api_model", "api_truncate")


def _finalize(cfg: TeacherConfig, work: Path, out: Path, n_shards: int, plan: Plan, red: dict[str, Any] | None,
              store_dtype: str, identity: dict[str, Any], part: tuple[int, int] | None,
              inputs: dict[str, Path], rate: _Rate) -> dict[str, Any]:
    metas = [shard_meta(work / shard_name(s)) for s in range(n_shards)]
    rows = sum(m["rows"] for m in metas)
    fid_n = sum(m["fid_n"] for m in metas)
    compression: dict[str, Any] = {"method": "none"} if red is None else R.public_record(red)
    if fid_n:
        compression["fidelity"] = {"mean_cosine": sum(m["fid_sum"] for m in metas) / fid_n,
                                   "min_cosine": min(m["fid_min"] for m in metas if m["fid_n"]),
                                   "rows": fid_n}
    dim = int(red["dim"]) if red is not None else _probe_dim(work, n_shards)
    for extra in [work / PLAN_FILE, work / "reduction.json", *work.glob(".*")]:
        extra.unlink(missing_ok=True)  # plan files and temp files a kill left behind
    manifest = write_manifest(
        work, kind=KIND, stage="teacher", config=cfg, inputs=inputs,
        counts={"rows": rows, "unique_prompts": len(plan.prompts), "pairs_total": plan.n_pairs_total,
                "tokens": sum(m["tokens"] for m in metas),
                "unique_prompts_total": plan.n_unique_total},
        dim=dim, dtype=store_dtype, compression=compression,
        shards=[shard_name(s) for s in range(n_shards)],
        part=None if part is None else {"index": part[0], "count": part[1]},
        **identity,
    )
    replace_dir(work, out)
    return {"out": str(out), "rows": rows, "unique_prompts": len(plan.prompts), "shards": n_shards, "dim": dim,
            "compression": compression, "pairs_per_s": rate.pairs / max(time.perf_counter() - rate.t0, 1e-9),
            "content_hash": manifest["content_hash"]}


def _probe_dim(work: Path, n_shards: int) -> int:
    if n_shards == 0:
        return 0
    with open(work / shard_name(0), "rb") as fh:
        return int(ipc.open_file(fh).schema.field("vector").type.list_size)
