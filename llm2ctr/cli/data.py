"""`llm2ctr data ...` commands: ingest (import/validate/split) and world (synth/simulate/history)."""

from __future__ import annotations

import argparse

from llm2ctr.cli.data_ingest import register as register_ingest
from llm2ctr.cli.data_world import register as register_world


def register(verbs: argparse._SubParsersAction) -> None:
    # imported by module path, not `from llm2ctr.cli import ...`: cli/__init__.py imports this module
    register_ingest(verbs)
    register_world(verbs)
