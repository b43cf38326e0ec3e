"""`llm2ctr data import|validate|split`: bring a user's labelled pairs in, check them, re-split."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from llm2ctr.cli.common import add_command, config_from_args
from llm2ctr.config import Config

_IMPORT_EPILOG = """\
examples:
  llm2ctr data import train.csv --map query=search_term,item_text=product_title,rsl=relevance
  llm2ctr data import esci.parquet --label-scale esci --on-bad-rows skip --rejects bad.csv
  llm2ctr data import grades.tsv --label-scale int data.ingest.label_range=[0,10]
  llm2ctr data import train.csv.gz --label-scale continuous --label-range 1,3

Flags override data.ingest.* from --config; key=value overrides may come anywhere.
Compressed files (.gz .bz2 .xz .zst) are read as they are; the format comes from the inner extension.
Bad rows are refused by default (exit 2, a summary per reason); see docs/data-import.md.
"""


def _source_first(p: argparse.ArgumentParser, help_text: str) -> None:
    """Add SOURCE and let flags, SOURCE and key=value overrides come in any order.

    argparse binds positionals greedily per run of non-flag words, so `import a.csv --out D k=v`
    fails with plain parse_known_args; the intermixed parser handles it. (A candidate for
    cli.common.add_command, which every verb with overrides would benefit from.)
    """
    p.add_argument("source", metavar="SOURCE", help=help_text)
    for group in (p._actions, p._positionals._group_actions):
        over = next(a for a in group if a.dest == "overrides")
        group.remove(over)
        group.append(over)
    plain = p.parse_known_args

    def intermixed(args=None, namespace=None):  # type: ignore[no-untyped-def]
        p.parse_known_args = plain  # type: ignore[method-assign]
        try:
            ns, rest = p.parse_known_intermixed_args(args, namespace)
        finally:
            p.parse_known_args = intermixed  # type: ignore[method-assign]
        words = [ns.source, *ns.overrides]  # SOURCE is the one word that is not key=value
        src = next((w for w in words if "=" not in w or Path(w).exists()), words[0])
        words.remove(src)
        ns.source, ns.overrides = src, words
        return ns, rest

    p.parse_known_args = intermixed  # type: ignore[method-assign]


def _reading_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=["auto", "csv", "tsv", "parquet", "jsonl", "hf"],
                   help="input format (default: from the extension, looking through .gz/.bz2/.xz/.zst; "
                   "a folder = saved HF dataset)")
    p.add_argument("--encoding", help="text encoding of CSV/TSV/JSONL (default utf-8; e.g. cp1252, latin-1)")
    p.add_argument("--map", dest="column_map", metavar="OURS=THEIRS,...",
                   help="column mapping, e.g. query=search_term,item_text=product_title,rsl=relevance")
    p.add_argument("--label-scale", choices=["auto", "int", "continuous", "esci", "map"],
                   help="how labels become rsl 1..4 (default auto: detected from the values and logged)")
    p.add_argument("--label-map", metavar="VALUE=LEVEL,...", help="explicit labels, e.g. 'E=4,S=3,C=2,I=1'")
    p.add_argument("--label-range", metavar="LOW,HIGH",
                   help="range of the label scale; outside it a label is a bad row (default: 1,4 for integers, "
                   "0,3 if the data use it; 1,3 for continuous)")
    p.add_argument("--max-text-chars", type=int, help="longest accepted query/item text (default 2000)")
    p.add_argument("--rejects", metavar="FILE.csv", help="where to list bad rows (row, column, value, reason)")


def _config(args: argparse.Namespace) -> Config:
    cfg = config_from_args(args)
    ing = cfg.data.ingest
    if args.format:
        ing.format = args.format
    if args.encoding:
        ing.encoding = args.encoding
    if args.column_map:
        from llm2ctr.data.validate import parse_column_map

        ing.column_map = parse_column_map(args.column_map)
    if args.label_scale:
        ing.label_scale = args.label_scale
    if args.label_map:
        from llm2ctr.cli.common import UserError
        from llm2ctr.data.labels import LabelConfigError, parse_label_map

        try:
            ing.label_map = parse_label_map(args.label_map)
        except LabelConfigError as exc:
            raise UserError(f"--label-map: {exc}") from None
    if args.label_range:
        ing.label_range = _label_range(args.label_range)
    if args.max_text_chars is not None:
        ing.max_text_chars = args.max_text_chars
    if args.rejects:
        ing.rejects = args.rejects
    if getattr(args, "on_bad_rows", None):
        ing.on_bad_rows = args.on_bad_rows
    return cfg


def _label_range(spec: str) -> list[float]:
    """``'1,3'`` or ``'[1, 3]'`` -> ``[1.0, 3.0]``; the order and the bins are checked with the other options."""
    from llm2ctr.cli.common import UserError

    parts = [p.strip() for p in spec.strip().strip("[]").split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 2:
        raise UserError(f"--label-range '{spec}': expected two numbers LOW,HIGH, e.g. --label-range 1,3")
    return values


def _print(summary: dict) -> None:
    print(json.dumps(summary, indent=2, default=str))


def _import(args: argparse.Namespace) -> int:
    from llm2ctr.data.ingest import run_import

    _print(run_import(_config(args), args.source, args.out))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from llm2ctr.data.ingest import run_import

    summary = run_import(_config(args), args.source, dry_run=True)
    print(f"{args.source}: no bad rows")
    _print(summary)
    return 0


def _split(args: argparse.Namespace) -> int:
    from llm2ctr.data.splits import run_split

    cfg = config_from_args(args)
    s = cfg.data.split
    if args.kind == "pairs":
        s.valid_share = s.valid_share if args.valid_share is None else args.valid_share
        s.test_share = s.test_share if args.test_share is None else args.test_share
    else:
        s.event_valid_share = s.event_valid_share if args.valid_share is None else args.valid_share
        s.event_test_share = s.event_test_share if args.test_share is None else args.test_share
    if args.seed is not None:
        s.seed = args.seed
    _print(run_split(cfg, args.kind, args.method, args.path))
    return 0


def register(verbs: argparse._SubParsersAction) -> None:
    """Add `data import`, `data validate` and `data split`."""
    p = add_command(
        verbs, "import", _import, "import labelled query-item pairs (csv/tsv/parquet/jsonl/HF folder)",
        description="Read SOURCE, validate every row, map labels to rsl 1..4, split by query and save a "
        "pairs artifact (default {workdir}/data/pairs).\n\n" + _IMPORT_EPILOG,
    )
    _source_first(p, "the file (.csv .tsv .parquet .jsonl, optionally .gz .bz2 .xz .zst) or saved HF dataset folder")
    p.add_argument("--out", metavar="DIR", help="output folder (default {workdir}/data/pairs)")
    _reading_flags(p)
    p.add_argument("--on-bad-rows", choices=["error", "skip"],
                   help="error (default): refuse the file and list bad rows; skip: import the good rows")

    p = add_command(
        verbs, "validate", _validate, "check a pairs file without importing it (exit 2 if any row is bad)",
        description="Run every check `data import` runs and print the per-reason summary; writes nothing "
        "unless --rejects is given.",
    )
    _source_first(p, "the file or saved HF dataset folder to check")
    _reading_flags(p)

    p = add_command(
        verbs, "split", _split, "re-split a pairs or events artifact in place (no leakage)",
        description="Rewrite the split column of a saved artifact atomically. Pairs: by query (no query "
        "in two splits) or random. Events: time (test = last test share of the time range), user, "
        "request or random. Shares and seed default to data.split.*.",
    )
    p.add_argument("--kind", choices=["pairs", "events"], default="pairs", help="which artifact (default pairs)")
    p.add_argument("--method", help="pairs: query|random; events: time|user|request|random")
    p.add_argument("--path", metavar="DIR", help="artifact folder (default {workdir}/data/<kind>)")
    p.add_argument("--valid-share", type=float, help="share of queries/users/requests/time for valid")
    p.add_argument("--test-share", type=float, help="share for test")
    p.add_argument("--seed", type=int, help="seed for group/random splits")
