"""Unlabelled distillation pairs: every query against near-neighbour and random catalogue items.

Why: a student distilled on the labelled pairs alone matches its teacher on queries it saw but
not on new ones (cosine 0.8 vs 0.48 on a real 10k-pair set). Teacher vectors cost nothing to
label, so we widen the distillation set: for each query, the ``near_k`` catalogue items most
similar to it (TF-IDF cosine; the hard, informative cases) and ``random_k`` other items (the easy
negatives). Rows have ``rsl`` null, so they feed only the distillation term. ``llm2ctr rag``
(``run_external_neighbours``) gives them retrieved labelled *training* examples and
``llm2ctr teacher embed`` (with ``examples_dir`` = the labelled pairs) their teacher vectors, so
their targets come from the same RAG prompts as the labelled pairs'.

Queries the labelled set never saw (``new_queries``, passed to ``build_distill_pairs``): from the
impression log's training period (``data/events``) and, for the synthetic world, from the query
generator under another seed. They widen the query distribution the student is distilled on.

Leakage guard: rows carry their query's split, so distillation pairs of valid/test queries stay
in valid/test and the trainer (split == "train" only) never sees them. A new query gets split
"train", so it must not be a held-out query: ``new_queries`` drops every query equal (up to case
and whitespace) to any labelled query of any split, and ``build_distill_pairs`` checks the same
again, so a valid/test labelled query can never come back as a training distillation query. Only
the events' training split (``event_splits``) is read, so test-period queries do not enter either.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.feature_extraction.text import TfidfVectorizer
from tqdm.auto import tqdm

log = logging.getLogger(__name__)


def normalise_query(q: str) -> str:
    """Case- and whitespace-insensitive form of a query (as the RAG leakage guard compares texts)."""
    return " ".join(str(q).lower().split())


def distill_pair_id(query: str, item_id: str) -> str:
    """Stable id of an unlabelled (query, item) pair, distinct from any labelled pair id."""
    return "d-" + hashlib.sha1(f"{query}\x1f{item_id}".encode()).hexdigest()[:16]


def catalogue_from_pairs(pairs: pa.Table) -> pa.Table:
    """Distinct items (item_id, item_text, category) of a pairs table, first occurrence kept."""
    ids = pairs.column("item_id").to_numpy(zero_copy_only=False)
    _, first = np.unique(ids, return_index=True)
    first.sort()
    return pairs.select(["item_id", "item_text", "category"]).take(pa.array(first))


def build_distill_pairs(
    pairs: pa.Table,
    catalogue: pa.Table,
    near_k: int,
    random_k: int,
    seed: int = 0,
    new_queries: Sequence[str] = (),
) -> tuple[pa.Table, dict[str, int]]:
    """Pairs-schema table of unlabelled (query, item) pairs not already in ``pairs``, and counts.

    ``catalogue`` needs item_id and item_text (category optional). ``new_queries``: extra queries
    (split "train", column ``new_query`` true); one equal up to case/whitespace to a labelled query
    or to an earlier new query is dropped (``counts['new_queries_dropped']``). Work is
    O(queries x items) in chunks of bounded memory; nothing is quadratic in the number of pairs.
    """
    q_tab = pairs.select(["query", "split"]).to_pandas().drop_duplicates("query", keep="first")
    queries = q_tab["query"].tolist()
    q_split = q_tab["split"].tolist()
    n_labelled_q = len(queries)
    seen = {normalise_query(q) for q in queries}
    dropped = 0
    for q in new_queries:
        key = normalise_query(q)
        if not key or key in seen:
            dropped += 1
            continue
        seen.add(key)
        queries.append(str(q))
        q_split.append("train")
    item_ids = np.asarray(catalogue.column("item_id").to_pylist(), dtype=object)
    item_text = np.asarray(catalogue.column("item_text").to_pylist(), dtype=object)
    item_cat = (
        np.asarray(catalogue.column("category").to_pylist(), dtype=object)
        if "category" in catalogue.column_names
        else np.full(len(item_ids), "unknown", dtype=object)
    )
    n_items = len(item_ids)
    existing = set(zip(pairs.column("query").to_pylist(), pairs.column("item_id").to_pylist(), strict=True))
    vec = TfidfVectorizer(sublinear_tf=True).fit(list(item_text) + queries)
    items_m = vec.transform(item_text).T.tocsc()
    rng = np.random.default_rng(seed)
    chunk = max(1, min(1024, (1 << 24) // max(n_items, 1)))
    out_q: list[str] = []
    out_i: list[int] = []
    out_src: list[str] = []
    out_split: list[str] = []
    out_new: list[bool] = []
    counts = {"queries": len(queries), "labelled_queries": n_labelled_q, "new_queries": len(queries) - n_labelled_q,
              "new_queries_dropped": dropped, "items": n_items, "near": 0, "random": 0, "skipped_labelled": 0}
    k_near = min(near_k, n_items)
    for s in tqdm(range(0, len(queries), chunk), desc="distill pairs", disable=len(queries) <= chunk):
        qs = queries[s : s + chunk]
        sims = (vec.transform(qs) @ items_m).toarray() if k_near else None
        for j, q in enumerate(qs):
            chosen: list[tuple[int, str]] = []
            if k_near:
                row = sims[j]
                top = np.argpartition(-row, k_near - 1)[:k_near] if k_near < n_items else np.arange(n_items)
                top = top[np.lexsort((top, -row[top]))]  # best first, ties by index: deterministic
                chosen += [(int(t), "near") for t in top]
            if random_k:
                picked = {t for t, _ in chosen}
                cand = rng.choice(n_items, size=min(n_items, random_k + len(picked)), replace=False)
                chosen += [(int(t), "random") for t in cand if t not in picked][:random_k]
            for t, src in chosen:
                if (q, item_ids[t]) in existing:
                    counts["skipped_labelled"] += 1
                    continue
                out_q.append(q)
                out_i.append(t)
                out_src.append(src)
                out_split.append(q_split[s + j])
                out_new.append(s + j >= n_labelled_q)
                counts[src] += 1
    idx = np.asarray(out_i, dtype=np.int64)
    table = pa.table(
        {
            "pair_id": [distill_pair_id(q, item_ids[t]) for q, t in zip(out_q, out_i, strict=True)],
            "query": out_q,
            "item_id": item_ids[idx].tolist(),
            "item_text": item_text[idx].tolist(),
            "rsl": pa.nulls(len(out_q), pa.int8()),
            "category": item_cat[idx].tolist(),
            "split": out_split,
            "source": out_src,
            "new_query": pa.array(out_new, pa.bool_()),
        }
    )
    counts["rows"] = table.num_rows
    counts["new_query_rows"] = int(sum(out_new))
    return table, counts


@dataclass
class NewQueries:
    """Queries for distillation that no labelled pair has, with where they came from."""

    queries: list[str]
    counts: dict[str, int]
    # artifacts read besides the pairs (``events`` when it was read): for the manifest's inputs
    inputs: dict[str, Path] = field(default_factory=dict)


def _events_queries(events_dir: Path, splits: Iterable[str] | None) -> tuple[list[str], str]:
    """Distinct queries of an events artifact, most frequent first (ties: text); '' or why none."""
    from llm2ctr.artifacts import ArtifactError
    from llm2ctr.data.store import load_events

    try:
        events = load_events(events_dir)
    except ArtifactError as exc:
        return [], f"no events artifact ({str(exc).splitlines()[0]})"
    if "query" not in events.column_names:
        return [], f"{events_dir} has no query column"
    query = events.column("query")
    if splits is not None and "split" in events.column_names:
        query = query.filter(pc.is_in(events.column("split"), pa.array(list(splits), pa.string())))
    vc = pc.value_counts(query.drop_null().cast(pa.string()))
    freq = zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True)
    return [q for q, _ in sorted(freq, key=lambda kv: (-kv[1], kv[0]))], ""


def _synth_queries(manifest: dict, want: int, seed: int) -> list[str]:
    """Queries of the synthetic generator that wrote the pairs, drawn under another seed."""
    from llm2ctr.data.config import SynthConfig
    from llm2ctr.data.synth import build_catalogue, build_queries

    known = {f.name for f in dataclasses.fields(SynthConfig)}
    synth = SynthConfig(**{k: v for k, v in (manifest.get("config") or {}).get("synth", {}).items() if k in known})
    world_seed = int(manifest.get("seed", 0))
    _, attrs = build_catalogue(synth, world_seed)  # the catalogue the pairs were drawn from
    other = dataclasses.replace(synth, seed=synth.seed + 100_003 + int(seed), n_queries=max(1, want))
    return [str(q) for q in build_queries(other, attrs, world_seed)["text"].tolist()]


def new_queries(
    pairs_dir: str | Path,
    count: int,
    *,
    events_dir: str | Path | None = None,
    synth: bool = True,
    seed: int = 0,
    event_splits: Sequence[str] | None = ("train",),
) -> NewQueries:
    """Up to ``count`` queries that no labelled pair of ``pairs_dir`` has, for ``build_distill_pairs``.

    Sources, in order: (a) ``events_dir`` (an ``events`` artifact, e.g. ``{workdir}/data/events``;
    skipped when absent or without a ``query`` column), rows of ``event_splits`` only (default the
    training period; None = all), most frequent queries first; (b) when ``synth`` and the pairs
    were written by the synthetic generator (manifest stage ``data.synth``), queries from the same
    generator and catalogue under another seed. Every query equal, up to case and whitespace, to a
    labelled query of any split (train, valid or test) is dropped, and so are duplicates.
    """
    from llm2ctr.artifacts import read_manifest
    from llm2ctr.data.store import load_pairs

    pairs_dir = Path(pairs_dir)
    manifest = read_manifest(pairs_dir, "pairs")
    labelled = {normalise_query(q) for q in load_pairs(pairs_dir).column("query").unique().to_pylist()}
    counts = {"requested": int(count), "from_events": 0, "from_synth": 0, "dropped_labelled": 0, "dropped_dup": 0}
    inputs: dict[str, Path] = {}
    out: list[str] = []
    taken: set[str] = set()

    def take(cands: Iterable[str], source: str) -> None:
        for q in cands:
            if len(out) >= count:
                return
            key = normalise_query(q)
            if not key or key in taken:
                counts["dropped_dup"] += 1
            elif key in labelled:
                counts["dropped_labelled"] += 1
            else:
                taken.add(key)
                out.append(q)
                counts[source] += 1

    if count <= 0:
        return NewQueries([], counts, inputs)
    if events_dir is not None:
        cands, why = _events_queries(Path(events_dir), event_splits)
        if why:
            log.info("new distillation queries: events skipped: %s", why)
        else:
            inputs["events"] = Path(events_dir)
            take(cands, "from_events")
    if synth and len(out) < count and manifest.get("stage") == "data.synth":
        take(_synth_queries(manifest, count - len(out) + len(labelled), seed), "from_synth")
    counts["queries"] = len(out)
    if len(out) < count:
        log.info("new distillation queries: %d of %d found (%s)", len(out), count, counts)
    return NewQueries(out, counts, inputs)
