"""`llm2ctr data ...` commands: ingest (import/validate/split) and world (synth/simulate/history)."""

from __future__ import annotations

import argparse

from llm2ctr.cli import data_ingest, data_world


def register(verbs: argparse._SubParsersAction) -> None:
    data_ingest.register(verbs)
    data_world.register(verbs)
