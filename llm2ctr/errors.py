"""The error vocabulary of every stage (kept out of the CLI package so stages need not import it).

A user-fixable problem raises a :class:`UserError` subclass whose message says what to fix;
``llm2ctr.cli.common.run_guarded`` prints it without a traceback and exits with the class's
``exit_code``. Anything else is a bug and keeps its traceback (exit 1).

=========================  ====  ==========================================================
class                      exit  raised for
=========================  ====  ==========================================================
UserError                  2     root: anything the user can fix
ConfigError                2     a config file or ``key=value`` override that cannot apply
InputError                 2     bad input data or option values (file, row, column, value)
ArtifactError              2     an upstream artifact that is missing, stale, damaged or of
                                 an unknown kind/version: (re-)run the stage that writes it
MissingArtifactError       2     the artifact was never written (run the earlier stage)
TeacherBackendError        2     a teacher backend cannot embed (server answer, model load)
TeacherModelError          2     a packaged teacher model cannot be found or converted
OptionalDependencyError    2     a feature needs an optional extra; says the pip command
(disk full, ENOSPC)        2     printed by run_guarded: which file, nothing half-written
(Ctrl-C)                   130   re-run the same command to resume
=========================  ====  ==========================================================

Every user error exits 2 (the code argparse uses for a bad command line): scripts tell "fix
something and re-run" from a crash (1) without parsing messages. ``exit_code`` is a class
attribute so a new class may choose another code without touching the CLI.

The classes that replace a built-in also subclass it (``InputError`` and ``ConfigError`` are
``ValueError``s, ``MissingArtifactError`` a ``FileNotFoundError``), so callers that caught the
built-in keep working.
"""

from __future__ import annotations


class UserError(Exception):
    """An error the user can fix (bad input, missing artifact); printed without a traceback."""

    exit_code: int = 2


class ConfigError(UserError, ValueError):
    """A config file or override that cannot be applied; the message says what to fix."""


class InputError(UserError, ValueError):
    """Bad input data or option values; the message names the file, row, column and value."""


class ArtifactError(UserError, RuntimeError):
    """An input artifact is missing, incomplete, corrupted or of an unknown kind/version."""


class MissingArtifactError(ArtifactError, FileNotFoundError):
    """An upstream artifact was never written; the message says which command writes it."""

    def __str__(self) -> str:  # OSError's own __str__ would print "[Errno None] ..." for 2+ args
        return " ".join(str(a) for a in self.args)


class TeacherBackendError(UserError, RuntimeError):
    """A backend cannot embed (bad server answer, model that does not load); says what to fix."""


class TeacherModelError(UserError):
    """A packaged teacher model cannot be found or converted; says what to install."""


class OptionalDependencyError(UserError):
    """A feature needs an optional extra that is not installed; says the pip command."""
