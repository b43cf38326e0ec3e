"""Shared CLI plumbing: the --config/override arguments and turning user errors into messages.

:func:`run_guarded` is the one place that maps errors to exit codes (the vocabulary and its codes:
``llm2ctr/errors.py``; docs/development.md). CLI verbs hold no try/except of their own.
"""

from __future__ import annotations

import argparse
import errno
import logging
import sys
from collections.abc import Callable
from typing import Any

from llm2ctr.config import Config, load_config
from llm2ctr.errors import UserError

__all__ = ["EXIT_CODES", "UserError", "add_command", "config_from_args", "run_guarded"]

EXIT_INTERRUPTED = 130
# for `llm2ctr --help` and docs/development.md; the codes themselves live on the error classes
EXIT_CODES = f"""exit codes:
  0    done
  1    a bug: the traceback says where
  2    something to fix, the message says what: a bad config, input file or option, a missing
       or stale upstream artifact (run the stage that writes it), an optional extra not
       installed, a full disk (llm2ctr/errors.py lists the error classes)
  {EXIT_INTERRUPTED:<4} interrupted: re-run the same command to resume"""


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


def _fail(message: str, code: int) -> int:
    print(f"llm2ctr: error: {message}", file=sys.stderr)
    return code


def run_guarded(func: Callable[[argparse.Namespace], Any], args: argparse.Namespace) -> int:
    """Run a verb; a user error becomes one line on stderr and its class's exit code (see EXIT_CODES)."""
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        rc = func(args)
    except UserError as exc:  # ConfigError, InputError, ArtifactError, ... (llm2ctr/errors.py)
        return _fail(str(exc), exc.exit_code)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            where = exc.filename or "(the library did not say which file)"
            return _fail(f"disk full while writing {where}: {exc.strerror}. "
                         "Nothing half-written was left in place; free space and re-run.", UserError.exit_code)
        raise
    except KeyboardInterrupt:
        print("llm2ctr: interrupted; re-run the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return int(rc or 0)
