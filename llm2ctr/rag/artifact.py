"""The ``rag_index`` artifact on disk: faiss file, Arrow id map, float16 embeddings, manifest.

Layout of ``{workdir}/rag/index``::

    index.faiss              faiss index; its vector i is the pair whose faiss_id is i
    id_map.arrow             Arrow IPC file, pairs-table row order: pair_id, faiss_id (-1 = not indexed)
    embeddings.safetensors   "embeddings": float16 [n_pairs, dim], pairs-table row order (for reuse)
    manifest.json            kind rag_index

Every pair is embedded (it is a query for ``rag neighbours``), only retrievable pairs (training
split, labelled) are indexed.

The ``neighbours`` artifact (``{workdir}/rag/neighbours``, ``rag/distill_neighbours``) is a table
with one row per pair: the column names below (``NB_*``, ``EDGE_*``) are its contract, written by
``neighbours.to_table`` and read by the teacher's prompts. This module is the rag stage's only
door for other stages; it imports faiss lazily so that reading the names costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
from safetensors.numpy import load_file, save_file

from llm2ctr.artifacts import ArtifactError, read_manifest
from llm2ctr.config import Config

if TYPE_CHECKING:
    import faiss

INDEX_KIND = "rag_index"
NEIGHBOURS_KIND = "neighbours"
# columns of the neighbours table: the pair, its retrieved labelled neighbours (best first) with
# their labels and similarities and the similarity-weighted majority label, then the edge cases
# (near neighbours whose label differs from that majority)
PAIR_ID = "pair_id"
NB_PAIR_IDS, NB_RSL, NB_SIM, NB_MAJORITY_RSL = "nb_pair_ids", "nb_rsl", "nb_sim", "nb_majority_rsl"
EDGE_PAIR_IDS, EDGE_RSL, EDGE_SIM = "edge_pair_ids", "edge_rsl", "edge_sim"
NEIGHBOUR_COLUMNS = (PAIR_ID, NB_PAIR_IDS, NB_RSL, NB_SIM, NB_MAJORITY_RSL, EDGE_PAIR_IDS, EDGE_RSL, EDGE_SIM)



def neighbours_dir(cfg: Config) -> Path:
    """rag/neighbours: the labelled pairs' neighbours (ids into data/pairs)."""
    return cfg.stage_dir("rag", "neighbours")


def distill_neighbours_dir(cfg: Config) -> Path:
    """rag/distill_neighbours: the distillation pairs' labelled training neighbours (ids into data/pairs)."""
    return cfg.stage_dir("rag", "distill_neighbours")


INDEX_FILE = "index.faiss"
ID_MAP_FILE = "id_map.arrow"
EMB_FILE = "embeddings.safetensors"
EMB_KEY = "embeddings"


@dataclass
class RagIndex:
    index: faiss.Index
    pair_ids: pa.Array  # pairs-table row order
    faiss_id: np.ndarray  # int64 per row, -1 = not in the index
    embeddings: np.ndarray  # float32 [n_pairs, dim]
    manifest: dict[str, Any]

    @property
    def faiss_to_row(self) -> np.ndarray:
        """Row of the pairs table for each faiss id."""
        out = np.full(self.index.ntotal, -1, dtype=np.int64)
        rows = np.flatnonzero(self.faiss_id >= 0)
        out[self.faiss_id[rows]] = rows
        return out


def write_rag_files(
    directory: Path, index: faiss.Index, pair_ids: pa.Array, faiss_id: np.ndarray, embeddings: np.ndarray
) -> None:
    from llm2ctr.rag.index import write_index

    write_index(index, directory / INDEX_FILE)
    table = pa.table({"pair_id": pair_ids, "faiss_id": pa.array(faiss_id, pa.int64())})
    with pa.OSFile(str(directory / ID_MAP_FILE), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    save_file({EMB_KEY: np.ascontiguousarray(embeddings, dtype=np.float16)}, str(directory / EMB_FILE))


def load_rag_index(directory: str | Path) -> RagIndex:
    """Open a ``rag index`` artifact after checking its manifest and that its parts agree."""
    from llm2ctr.rag.index import read_index

    directory = Path(directory)
    manifest = read_manifest(directory, INDEX_KIND)
    index = read_index(directory / INDEX_FILE)
    try:
        with pa.memory_map(str(directory / ID_MAP_FILE)) as src:
            table = ipc.open_file(src).read_all()
        emb = load_file(str(directory / EMB_FILE))[EMB_KEY].astype(np.float32)
    except (OSError, pa.ArrowInvalid, KeyError) as exc:
        raise ArtifactError(f"{directory}: id map or embeddings unreadable ({exc}); re-run `llm2ctr rag index`") from None
    faiss_id = table.column("faiss_id").to_numpy()
    n_indexed = int((faiss_id >= 0).sum())
    if n_indexed != index.ntotal or len(emb) != table.num_rows or emb.shape[1] != index.d:
        raise ArtifactError(
            f"{directory}: parts disagree (index holds {index.ntotal} vectors of dim {index.d}, id map "
            f"{table.num_rows} rows of which {n_indexed} indexed, embeddings {emb.shape}); re-run `llm2ctr rag index`"
        )
    return RagIndex(index, table.column("pair_id").combine_chunks(), faiss_id, emb, manifest)
