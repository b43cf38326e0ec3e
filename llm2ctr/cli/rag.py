"""`llm2ctr rag ...` commands: build the faiss index of labelled pairs, retrieve neighbours."""

from __future__ import annotations

import argparse
import json

from llm2ctr.cli.common import add_command, config_from_args

INDEX_HELP = """\
Embed every pair ("{query} [SEP] {item_text}") with rag.embedder (default: the packaged
all-MiniLM-L6-v2) and index the labelled training pairs in faiss: exact IndexFlatIP below
rag.exact_threshold vectors, HNSW or IVF-PQ above it (or rag.index_type=flat|hnsw|ivfpq).
Approximate indexes get recall@10 against exact search recorded in the manifest.
Reads {workdir}/data/pairs, writes {workdir}/rag/index. A killed run resumes from its last
embedded chunk.

example: llm2ctr rag index workdir=runs/demo rag.index_type=hnsw
"""

NEIGHBOURS_HELP = """\
For every pair (all splits) retrieve rag.k_neighbours labelled pairs from the training split
only, plus rag.k_edge_cases relevance edge cases: near training pairs whose rsl differs from the
neighbours' majority label. Never the pair itself, a pair with the same query and item text, a
pair of the same query (rag.exclude_same_query), a valid/test pair or an unlabelled one.
Reads {workdir}/data/pairs and {workdir}/rag/index, writes {workdir}/rag/neighbours.

example: llm2ctr rag neighbours workdir=runs/demo rag.k_neighbours=8
"""

EXTERNAL_HELP = """\
Training neighbours and edge cases, as `rag neighbours` finds them, for the pairs of another table
(e.g. the unlabelled distillation pairs of `student pairs`): each pair is embedded with
rag.embedder and searched in the index of the labelled pairs under the same leakage guard (only
labelled training pairs, never one of the same query when rag.exclude_same_query). Its ids point
into the labelled pairs: give that table to `teacher embed --examples`.
Reads --pairs, {workdir}/data/pairs and {workdir}/rag/index; writes {workdir}/rag/distill_neighbours.

example: llm2ctr rag external-neighbours workdir=runs/demo --pairs runs/demo/student/distill_pairs
"""


def _index(args: argparse.Namespace) -> int:
    from llm2ctr.rag.jobs import run_index

    print(json.dumps(run_index(config_from_args(args), args.pairs), indent=2))
    return 0


def _neighbours(args: argparse.Namespace) -> int:
    from llm2ctr.rag.jobs import run_neighbours

    print(json.dumps(run_neighbours(config_from_args(args), args.pairs, args.index), indent=2))
    return 0


def _external(args: argparse.Namespace) -> int:
    from llm2ctr.rag.jobs import run_external_neighbours

    summary = run_external_neighbours(config_from_args(args), args.pairs, out_dir=args.out, index_dir=args.index,
                                      examples_dir=args.examples)
    print(json.dumps(summary, indent=2))
    return 0


def register(verbs: argparse._SubParsersAction) -> None:
    """Add this group's verbs."""
    p = add_command(verbs, "index", _index, "embed pairs and build the faiss index", INDEX_HELP)
    p.add_argument("--pairs", metavar="DIR", help="pairs artifact (default {workdir}/data/pairs)")
    p = add_command(verbs, "neighbours", _neighbours, "retrieve training neighbours and edge cases",
                    NEIGHBOURS_HELP)
    p.add_argument("--pairs", metavar="DIR", help="pairs artifact (default {workdir}/data/pairs)")
    p.add_argument("--index", metavar="DIR", help="rag index artifact (default {workdir}/rag/index)")
    p = add_command(verbs, "external-neighbours", _external,
                    "training neighbours and edge cases for another pairs table (distillation pairs)",
                    EXTERNAL_HELP)
    p.add_argument("--pairs", metavar="DIR", required=True, help="the pairs to find examples for")
    p.add_argument("--examples", metavar="DIR", help="labelled pairs the index holds (default {workdir}/data/pairs)")
    p.add_argument("--index", metavar="DIR", help="rag index artifact (default {workdir}/rag/index)")
    p.add_argument("--out", metavar="DIR", help="output (default {workdir}/rag/distill_neighbours)")
