"""Entry points of the rag stage: ``run_index`` (embed + faiss), ``run_neighbours`` and
``run_external_neighbours`` (training examples for the pairs of another table, e.g. the unlabelled
distillation pairs, so their teacher prompts carry retrieved examples like the labelled pairs').

Both work in numbered chunks saved under a hidden work folder next to their artifact, so a job
killed half way continues from its last complete chunk and gives the same result; the artifact
itself appears only when complete (``atomic_dir``).
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from llm2ctr.artifacts import ArtifactError, atomic_dir, read_manifest, write_manifest
from llm2ctr.config import Config
from llm2ctr.data.store import load_pairs, save_table
from llm2ctr.errors import UserError
from llm2ctr.rag.artifact import (
    INDEX_KIND,
    NEIGHBOURS_KIND,
    RagIndex,
    distill_neighbours_dir,
    load_rag_index,
    neighbours_dir,
    write_rag_files,
)
from llm2ctr.rag.embedder import (
    embed_texts,
    embedder_from_config,
    embedding_dim,
    pair_texts,
    resolve_embedder,
)
from llm2ctr.rag.index import METRIC, IndexParams, build_index, choose_index_type, measure_recall
from llm2ctr.rag.neighbours import EDGE_RULE, Guard, retrieve, select, to_table
from llm2ctr.rag.resume import ChunkStore

log = logging.getLogger(__name__)
STAGE = "rag"


def _paths(cfg: Config, pairs_dir: str | Path | None) -> Path:
    return Path(pairs_dir) if pairs_dir is not None else cfg.stage_dir("data", "pairs")


def _check_positive(cfg: Config) -> None:
    r = cfg.rag
    for name in ("batch_size", "chunk_size", "k_neighbours", "recall_k", "search_batch", "recall_queries"):
        if getattr(r, name) <= 0:
            raise UserError(f"rag.{name}={getattr(r, name)}: expected a positive integer")
    if r.k_edge_cases < 0:
        raise UserError(f"rag.k_edge_cases={r.k_edge_cases}: expected >= 0")
    if r.overfetch < 1:
        raise UserError(f"rag.overfetch={r.overfetch}: expected >= 1")
    choose_index_type(0, r.index_type, 1, 1)  # a typo fails now, not after the embedding run
    if r.ivfpq_refine not in ("none", "sq8", "flat"):
        raise UserError(f"rag.ivfpq_refine={r.ivfpq_refine!r}: expected none, sq8 or flat")
    if r.threads > 0:
        faiss.omp_set_num_threads(r.threads)


def embed_pairs(cfg: Config, pairs: pa.Table, pairs_hash: str, work: Path) -> np.ndarray:
    """Embed every pair's ``query [SEP] item_text`` in resumable chunks; float32 [n, d]."""
    r = cfg.rag
    model = None  # loaded only if a chunk is missing: a finished-but-unassembled run resumes instantly
    store = ChunkStore(
        work,
        {
            "pairs": pairs_hash,
            "embedder": r.embedder,
            "resolved": resolve_embedder(r.embedder),
            "max_seq_length": r.max_seq_length,
            "chunk_size": r.chunk_size,
            "batch_size": r.batch_size,
        },
    )
    n = pairs.num_rows
    starts = list(range(0, n, r.chunk_size))
    bar = tqdm(total=n, desc="embed pairs", unit="pair", disable=n == 0)
    for i, start in enumerate(starts):
        stop = min(start + r.chunk_size, n)
        if not store.has(i):
            if model is None:
                model = embedder_from_config(r)
            part = pairs.slice(start, stop - start)
            texts = pair_texts(part.column("query").to_pylist(), part.column("item_text").to_pylist())
            store.save(i, emb=embed_texts(model, texts, r.batch_size, show_progress=False))
        bar.update(stop - start)
    bar.close()
    if not starts:
        return np.zeros((0, embedding_dim(embedder_from_config(r))), dtype=np.float32)
    return np.concatenate([store.load(i)["emb"] for i in range(len(starts))])


def run_index(cfg: Config, pairs_dir: str | Path | None = None) -> dict[str, Any]:
    """Embed all pairs, index the labelled training ones; writes ``{workdir}/rag/index``."""
    _check_positive(cfg)
    r = cfg.rag
    pairs_dir = _paths(cfg, pairs_dir)
    pairs = load_pairs(pairs_dir)
    pairs_hash = read_manifest(pairs_dir, "pairs")["content_hash"]
    out = cfg.stage_dir("rag", "index")
    work = out.with_name(".index.work")

    t0 = time.perf_counter()
    emb = embed_pairs(cfg, pairs, pairs_hash, work)
    embed_s = time.perf_counter() - t0
    guard = Guard.from_pairs(pairs)
    rows = np.flatnonzero(guard.retrievable)
    if len(rows) == 0:
        raise UserError(f"{pairs_dir}: no labelled pairs in the 'train' split, so there is nothing to "
                        "retrieve from (rag needs training pairs with an rsl)")
    faiss_id = np.full(pairs.num_rows, -1, dtype=np.int64)
    faiss_id[rows] = np.arange(len(rows))
    index_type = choose_index_type(len(rows), r.index_type, r.exact_threshold, r.ivfpq_threshold)
    params = IndexParams.from_config(r, index_type)
    t1 = time.perf_counter()
    index = build_index(emb[rows], params, seed=cfg.seed)
    build_s = time.perf_counter() - t1

    recall, n_q = 1.0, 0
    if index_type != "flat":
        rng = np.random.default_rng(cfg.seed)
        n_q = min(r.recall_queries, len(emb))
        sample = np.sort(rng.choice(len(emb), n_q, replace=False))
        recall = measure_recall(index, emb[rows], emb[sample], r.recall_k)
        log.info("%s recall@%d vs exact on %d queries: %.4f", index_type, r.recall_k, n_q, recall)

    unlabelled = int(pairs.column("rsl").null_count)
    counts = {
        "pairs": pairs.num_rows,
        "indexed": len(rows),
        "not_indexed_unlabelled": unlabelled,
        "not_indexed_labelled_not_train": int(pairs.num_rows - len(rows) - unlabelled),
    }
    with atomic_dir(out) as tmp:
        write_rag_files(tmp, index, pairs.column("pair_id").combine_chunks(), faiss_id, emb)
        manifest = write_manifest(
            tmp,
            kind=INDEX_KIND,
            stage=STAGE,
            config=r,
            inputs={"pairs": pairs_dir},
            counts=counts,
            embedder=r.embedder,
            embedder_path=resolve_embedder(r.embedder),
            dim=int(emb.shape[1]),
            metric=METRIC,
            normalized=True,
            index_type=index_type,
            index_params={k: v for k, v in vars(params).items() if k != "extra"} | params.extra,
            count=int(index.ntotal),
            pair_text="{query} [SEP] {item_text}",
            embed_seconds=round(embed_s, 3),
            build_seconds=round(build_s, 3),
            recall_at_k=round(recall, 4),
            recall_k=r.recall_k,
            recall_queries=n_q,
            recall_note="exact index" if index_type == "flat" else "vs exact IndexFlatIP on the same vectors",
        )
    shutil.rmtree(work, ignore_errors=True)
    return {
        "index": str(out),
        "index_type": index_type,
        "indexed": len(rows),
        "pairs": pairs.num_rows,
        "dim": int(emb.shape[1]),
        f"recall@{r.recall_k}": round(recall, 4),
        "embed_seconds": round(embed_s, 2),
        "build_seconds": round(build_s, 2),
        "content_hash": manifest["content_hash"],
    }


def _load_index_of(index_dir: Path, pairs: pa.Table, pairs_hash: str, pairs_dir: Path) -> RagIndex:
    """The rag index, after checking it was built from exactly this pairs table (hash and row order)."""
    rag = load_rag_index(index_dir)
    built_from = rag.manifest.get("inputs", {}).get("pairs", {}).get("content_hash")
    if built_from != pairs_hash:
        raise ArtifactError(
            f"{index_dir}: the index was built from another pairs table ({built_from}) than {pairs_dir} "
            f"({pairs_hash}); re-run `llm2ctr rag index` on it"
        )
    ids_now = pairs.column("pair_id").combine_chunks()
    if not ids_now.equals(rag.pair_ids):
        raise ArtifactError(f"{index_dir}: id map does not list the pair_ids of {pairs_dir} in order; "
                            "re-run `llm2ctr rag index`")
    return rag


def _retrieve_in_chunks(r, index, embeddings: np.ndarray, row_offset: int, faiss_to_row: np.ndarray, guard: Guard,
                        want: int, store: ChunkStore, desc: str) -> tuple[np.ndarray, np.ndarray]:
    """Guarded top-``want`` rows and similarities for every query vector, in resumable chunks.

    Query i is guard row ``row_offset + i`` (its own pair for labelled pairs, past the examples for
    an external table)."""
    n = len(embeddings)
    rows_out = np.full((n, want), -1, dtype=np.int64)
    sims_out = np.full((n, want), -np.inf, dtype=np.float32)
    bar = tqdm(total=n, desc=desc, unit="pair", disable=n == 0)
    for i, start in enumerate(range(0, n, r.chunk_size)):
        stop = min(start + r.chunk_size, n)
        if not store.has(i):
            got_rows, got_sims = retrieve(
                index, embeddings[start:stop], row_offset + np.arange(start, stop), faiss_to_row, guard, want,
                r.overfetch, r.hnsw_ef_search, r.ivf_nprobe, r.search_batch,
            )
            store.save(i, rows=got_rows, sims=got_sims)
        part = store.load(i)
        rows_out[start:stop], sims_out[start:stop] = part["rows"], part["sims"]
        bar.update(stop - start)
    bar.close()
    return rows_out, sims_out


def _selection_counts(sel, k: int) -> dict[str, int]:
    n_nb = (sel.nb_rows >= 0).sum(axis=1)
    n_edge = (sel.edge_rows >= 0).sum(axis=1)
    return {
        "rows_short_of_k": int((n_nb < k).sum()),
        "rows_without_neighbours": int((n_nb == 0).sum()),
        "rows_with_edge_cases": int((n_edge > 0).sum()),
        "edge_cases": int(n_edge.sum()),
    }


def run_neighbours(
    cfg: Config, pairs_dir: str | Path | None = None, index_dir: str | Path | None = None
) -> dict[str, Any]:
    """k training neighbours + edge cases for every pair; writes ``{workdir}/rag/neighbours``."""
    _check_positive(cfg)
    r = cfg.rag
    pairs_dir = _paths(cfg, pairs_dir)
    index_dir = Path(index_dir) if index_dir is not None else cfg.stage_dir("rag", "index")
    pairs = load_pairs(pairs_dir)
    pairs_hash = read_manifest(pairs_dir, "pairs")["content_hash"]
    rag = _load_index_of(index_dir, pairs, pairs_hash, pairs_dir)

    guard = Guard.from_pairs(pairs, r.exclude_same_query)
    want = r.k_neighbours + max(r.edge_window - r.k_neighbours, r.k_edge_cases)
    faiss_to_row = rag.faiss_to_row
    store = ChunkStore(
        index_dir.with_name(".neighbours.work"),
        {"pairs": pairs_hash, "index": rag.manifest["content_hash"], "want": want,
         "exclude_same_query": r.exclude_same_query, "overfetch": r.overfetch, "chunk": r.chunk_size,
         "ef": r.hnsw_ef_search, "nprobe": r.ivf_nprobe},
    )
    n = pairs.num_rows
    rows_out, sims_out = _retrieve_in_chunks(r, rag.index, rag.embeddings, 0, faiss_to_row, guard, want, store,
                                             "neighbours")
    rsl = np.asarray(pairs.column("rsl").fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int8)
    sel = select(rows_out, sims_out, rsl, r.k_neighbours, r.k_edge_cases, r.edge_min_sim)
    table = to_table(pairs, sel)
    counts = {"pairs": n, **_selection_counts(sel, r.k_neighbours)}
    out = neighbours_dir(cfg)
    manifest = save_table(
        table, out, kind=NEIGHBOURS_KIND, stage=STAGE, config=r,
        inputs={"pairs": pairs_dir, "rag_index": index_dir}, counts=counts,
        k_neighbours=r.k_neighbours, k_edge_cases=r.k_edge_cases, edge_window=r.edge_window,
        exclude_same_query=r.exclude_same_query, edge_rule=EDGE_RULE,
        index_type=rag.manifest.get("index_type"), embedder=rag.manifest.get("embedder"),
    )
    store.clear()
    return {"neighbours": str(out), **counts, "content_hash": manifest["content_hash"]}


def run_external_neighbours(
    cfg: Config,
    pairs_dir: str | Path,
    out_dir: str | Path | None = None,
    index_dir: str | Path | None = None,
    examples_dir: str | Path | None = None,
) -> dict[str, Any]:
    """k training neighbours + edge cases, from the labelled pairs, for the pairs of another table.

    ``pairs_dir``: the external pairs (e.g. ``student/distill_pairs``; labels not needed, not used).
    ``examples_dir``: the labelled pairs the index was built from (default ``{workdir}/data/pairs``);
    ``index_dir``: that index (default ``{workdir}/rag/index``). Each external pair's
    ``query [SEP] item_text`` is embedded with ``rag.embedder`` (the index's own embedder; another
    one is refused) and searched in the index under the leakage guard of ``run_neighbours``: only
    labelled training pairs of ``examples_dir``, never one with the same query and item text, never
    one of the same query when ``rag.exclude_same_query``. Edge cases follow the same rule (the
    external pair's own label plays no part). Writes a ``neighbours`` table, one row per external
    pair in its order, whose nb/edge pair_ids point into ``examples_dir``: by default
    ``{workdir}/rag/distill_neighbours``. Embedding and retrieval run in resumable chunks under a
    hidden work folder next to the output.
    """
    _check_positive(cfg)
    r = cfg.rag
    pairs_dir = Path(pairs_dir)
    examples_dir = _paths(cfg, examples_dir)
    index_dir = Path(index_dir) if index_dir is not None else cfg.stage_dir("rag", "index")
    out = Path(out_dir) if out_dir is not None else distill_neighbours_dir(cfg)
    external = load_pairs(pairs_dir)
    ext_hash = read_manifest(pairs_dir, "pairs")["content_hash"]
    examples = load_pairs(examples_dir)
    ex_hash = read_manifest(examples_dir, "pairs")["content_hash"]
    rag = _load_index_of(index_dir, examples, ex_hash, examples_dir)
    built_with = rag.manifest.get("embedder_path")
    if built_with is not None and built_with != resolve_embedder(r.embedder):
        raise UserError(f"{index_dir}: the index was built with embedder {rag.manifest.get('embedder')!r} "
                        f"({built_with}), rag.embedder is {r.embedder!r}: their vectors do not compare; "
                        "use the index's embedder or re-run `llm2ctr rag index`")
    dup = pc.count_distinct(external.column("pair_id")).as_py() != external.num_rows
    if dup:
        raise ArtifactError(f"{pairs_dir}: pair_id is not unique; the neighbours table is keyed by it")

    t0 = time.perf_counter()
    emb = embed_pairs(cfg, external, ext_hash, out.with_name(f".{out.name}.embed.work"))
    embed_s = time.perf_counter() - t0
    if len(emb) and emb.shape[1] != rag.index.d:
        raise ArtifactError(f"{index_dir}: index vectors have dim {rag.index.d}, rag.embedder gives {emb.shape[1]}; "
                            "re-run `llm2ctr rag index`")

    n_ex, n = examples.num_rows, external.num_rows
    guard = Guard.for_external(examples, external, r.exclude_same_query)
    want = r.k_neighbours + max(r.edge_window - r.k_neighbours, r.k_edge_cases)
    faiss_to_row = rag.faiss_to_row
    store = ChunkStore(
        out.with_name(f".{out.name}.work"),
        {"pairs": ext_hash, "examples": ex_hash, "index": rag.manifest["content_hash"], "want": want,
         "exclude_same_query": r.exclude_same_query, "overfetch": r.overfetch, "chunk": r.chunk_size,
         "ef": r.hnsw_ef_search, "nprobe": r.ivf_nprobe},
    )
    rows_out, sims_out = _retrieve_in_chunks(r, rag.index, emb, n_ex, faiss_to_row, guard, want, store,
                                             "neighbours (external)")
    rsl = np.asarray(examples.column("rsl").fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int8)
    sel = select(rows_out, sims_out, rsl, r.k_neighbours, r.k_edge_cases, r.edge_min_sim)
    table = to_table(examples, sel, row_ids=external.column("pair_id"))
    counts = {"pairs": n, "examples": n_ex, **_selection_counts(sel, r.k_neighbours)}
    manifest = save_table(
        table, out, kind=NEIGHBOURS_KIND, stage=STAGE, config=r,
        inputs={"pairs": pairs_dir, "examples": examples_dir, "rag_index": index_dir}, counts=counts,
        k_neighbours=r.k_neighbours, k_edge_cases=r.k_edge_cases, edge_window=r.edge_window,
        exclude_same_query=r.exclude_same_query, edge_rule=EDGE_RULE,
        index_type=rag.manifest.get("index_type"), embedder=rag.manifest.get("embedder"),
        examples_from="examples", embed_seconds=round(embed_s, 3),
    )
    store.clear()
    shutil.rmtree(out.with_name(f".{out.name}.embed.work"), ignore_errors=True)
    return {"neighbours": str(out), **counts, "content_hash": manifest["content_hash"]}
