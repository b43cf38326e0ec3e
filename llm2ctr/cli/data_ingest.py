"""`llm2ctr data ...` commands (data_ingest)."""

from __future__ import annotations

import argparse


def register(verbs: argparse._SubParsersAction) -> None:
    """Add this group's verbs."""
