"""Versioned, RAG-augmented teacher prompts.

The order is chosen for vLLM prefix caching: the instruction and the target query come first, so
every pair of one query shares that prefix; retrieved examples (which differ per pair) and the
target item come last. The target item sits at the very end because the teacher pools the last
token, and because left truncation (``max_model_len``) then drops examples, never the target.
Any change to a template is a new template name: its hash goes into the store's manifest so a
store built from another prompt is never mistaken for this one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from llm2ctr.data.schema import RSL_NAMES
from llm2ctr.errors import ConfigError, InputError
from llm2ctr.rag.artifact import EDGE_PAIR_IDS, EDGE_RSL, NB_PAIR_IDS, NB_RSL, PAIR_ID
from llm2ctr.teacher.config import TeacherConfig

# name -> (header, example line, edge-case line, target). Never edit one in place: add a new name.
TEMPLATES: dict[str, dict[str, str]] = {
    "relevance-v1": {
        "header": "{instruction}\nQuery: {query}\n",
        "examples_title": "Similar labelled pairs:\n",
        "example": "- query: {query} | item: {item} | relevance: {rsl} ({name})\n",
        "edges_title": "Edge cases (near pairs with a different label):\n",
        "target": "Item: {item}\nRelevance of the item to the query:",
    },
    # the bare pair, exactly the text the student reads (no instruction, no examples)
    "pair-v1": {
        "header": "{query} [SEP] ",
        "examples_title": "",
        "example": "",
        "edges_title": "",
        "target": "{item}",
    },
}

# the neighbours-table columns a prompt reads (their names: llm2ctr/rag/artifact.py)
NEIGHBOUR_COLUMNS = (PAIR_ID, NB_PAIR_IDS, NB_RSL, EDGE_PAIR_IDS, EDGE_RSL)


@dataclass(frozen=True)
class PromptSpec:
    """Everything that changes the prompt text; its hash identifies the template in manifests."""

    template: str
    instruction: str
    use_rag: bool
    max_examples: int
    max_edge_cases: int

    @classmethod
    def from_config(cls, cfg: TeacherConfig) -> PromptSpec:
        if cfg.template not in TEMPLATES:
            raise ConfigError(f"teacher.template: unknown template {cfg.template!r}; known: {sorted(TEMPLATES)}")
        return cls(cfg.template, cfg.instruction, cfg.use_rag, cfg.max_examples, cfg.max_edge_cases)

    def template_hash(self) -> str:
        blob = json.dumps({"spec": self.__dict__, "text": TEMPLATES[self.template]}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _fmt_rsl(r: Any) -> tuple[str, str]:
    if r is None:
        return "?", "unknown"
    return str(int(r)), RSL_NAMES.get(int(r), "unknown")


def _neighbour_lookup(neighbours: pa.Table, where: str) -> dict[str, int]:
    missing = [c for c in NEIGHBOUR_COLUMNS if c not in neighbours.column_names]
    if missing:
        raise InputError(f"{where}: neighbours table lacks column(s) {missing}; present: {neighbours.column_names}")
    ids = neighbours.column(PAIR_ID).to_pylist()
    return {pid: i for i, pid in enumerate(ids)}


def build_prompts(pairs: pa.Table, spec: PromptSpec, neighbours: pa.Table | None = None,
                  where: str = "neighbours", examples: pa.Table | None = None) -> list[str]:
    """One prompt per pairs row (same order). Without RAG (or neighbours) only header + target.

    Neighbour pair_ids are looked up in ``examples``, the labelled table the retrieval index was
    built from; by default ``pairs`` itself (the labelled pairs' own neighbours). Pass it when
    ``pairs`` is another table (unlabelled distillation pairs whose neighbours come from
    ``rag/distill_neighbours``). An unknown id is an error naming the row of the neighbours table,
    never silently skipped.
    """
    t = TEMPLATES[spec.template]
    queries = pairs.column("query").to_pylist()
    items = pairs.column("item_text").to_pylist()
    header = t["header"]
    if not spec.use_rag or neighbours is None:
        return [header.format(instruction=spec.instruction, query=q) + t["target"].format(item=i)
                for q, i in zip(queries, items, strict=True)]
    ex = pairs if examples is None else examples
    ex_queries = queries if examples is None else ex.column("query").to_pylist()
    ex_items = items if examples is None else ex.column("item_text").to_pylist()
    row_of_pair = {pid: i for i, pid in enumerate(ex.column("pair_id").to_pylist())}
    row_of_nb = _neighbour_lookup(neighbours, where)
    cols = {c: neighbours.column(c).to_pylist() for c in NEIGHBOUR_COLUMNS}
    ex_name = "pairs" if examples is None else "examples"

    def lines(ids: Sequence[str] | None, rsls: Sequence[Any] | None, limit: int, nb_row: int, col: str) -> str:
        out = []
        for pid, r in zip((ids or [])[:limit], (rsls or [])[:limit], strict=False):
            j = row_of_pair.get(pid)
            if j is None:
                raise InputError(f"{where}: row {nb_row}, column {col}: pair_id {pid!r} is not in the {ex_name} table")
            rs, name = _fmt_rsl(r)
            out.append(t["example"].format(query=ex_queries[j], item=ex_items[j], rsl=rs, name=name))
        return "".join(out)

    prompts = []
    for pid, q, item in zip(pairs.column("pair_id").to_pylist(), queries, items, strict=True):
        text = header.format(instruction=spec.instruction, query=q)
        k = row_of_nb.get(pid)
        if k is not None:
            ex = lines(cols[NB_PAIR_IDS][k], cols[NB_RSL][k], spec.max_examples, k, NB_PAIR_IDS)
            if ex:
                text += t["examples_title"] + ex
            edges = lines(cols[EDGE_PAIR_IDS][k], cols[EDGE_RSL][k], spec.max_edge_cases, k, EDGE_PAIR_IDS)
            if edges:
                text += t["edges_title"] + edges
        prompts.append(text + t["target"].format(item=item))
    return prompts

