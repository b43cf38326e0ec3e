"""Shared CLI plumbing: the --config/override arguments and turning user errors into messages."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import Any

from llm2ctr.artifacts import ArtifactError
from llm2ctr.config import Config, ConfigError, load_config
from llm2ctr.errors import UserError

__all__ = ["UserError", "add_command", "config_from_args", "run_guarded"]


def add_command(
    verbs: argparse._SubParsersAction,
    name: str,
    func: Callable[[argparse.Namespace], int | None],
    help_text: str,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """Add a verb that takes --config FILE and key=value overrides, dispatching to ``func``."""
    p = verbs.add_parser(
        name,
        help=help_text,
        description=description or help_text,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", metavar="FILE.yaml", help="YAML config; defaults are the paper's values")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="config overrides with dotted keys, e.g. data.simulate.n_users=500",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.set_defaults(func=func)
    return p


def config_from_args(args: argparse.Namespace) -> Config:
    return load_config(args.config, args.overrides)


def run_guarded(func: Callable[[argparse.Namespace], Any], args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        rc = func(args)
    except (UserError, ConfigError, ArtifactError) as exc:
        print(f"llm2ctr: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno == 28:  # ENOSPC
            where = exc.filename or "(the library did not say which file)"
            print(f"llm2ctr: error: disk full while writing {where}: {exc.strerror}. "
                  "Nothing half-written was left in place; free space and re-run.", file=sys.stderr)
            return 2
        raise
    except KeyboardInterrupt:
        print("llm2ctr: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    return int(rc or 0)
