"""The ``llm2ctr`` command: ``llm2ctr <stage> <verb> [--config FILE] [key=value ...]``.

Thin on purpose: each stage module under ``llm2ctr/cli/`` only parses arguments and calls
stage functions. Errors a user can fix are printed as one clear message with exit code 2
(``cli/common.run_guarded``, the one place that maps errors to exit codes).
"""

from __future__ import annotations

import argparse
import sys

from llm2ctr import __version__
from llm2ctr.cli import ctr, data, pipeline, rag, student, teacher
from llm2ctr.cli.common import EXIT_CODES, UserError, run_guarded

GROUPS = {
    "data": (data, "import, validate, split, synthesise and simulate data"),
    "rag": (rag, "embed and index labelled pairs; retrieve neighbours and edge cases"),
    "teacher": (teacher, "LLM teacher embeddings (vLLM, OpenAI-compatible server, HF) and LoRA"),
    "student": (student, "domain tokenizer, ~2M-parameter encoder, distillation, export"),
    "ctr": (ctr, "PRECTR-V2 ranker, baselines, ablations, metrics and report"),
    "pipeline": (pipeline, "run every stage end to end, resumably"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llm2ctr",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Every command takes --config FILE.yaml and key=value overrides (e.g. student.epochs=3).\n"
        "See README.md for recipes.\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"llm2ctr {__version__}")
    groups = parser.add_subparsers(dest="group", metavar="<stage>")
    groups.required = True
    for name, (module, help_text) in GROUPS.items():
        sub = groups.add_parser(name, help=help_text, description=help_text)
        verbs = sub.add_subparsers(dest="verb", metavar="<verb>")
        verbs.required = True
        module.register(verbs)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_guarded(args.func, args)


__all__ = ["main", "build_parser", "UserError"]

if __name__ == "__main__":
    sys.exit(main())
