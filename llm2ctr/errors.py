"""Exceptions shared by every stage (kept out of the CLI package so stages need not import it)."""


class UserError(Exception):
    """An error the user can fix (bad input, missing artifact); printed without a traceback."""


class TeacherModelError(UserError):
    """A packaged teacher model cannot be found or converted; says what to install."""


class OptionalDependencyError(UserError):
    """A feature needs an optional extra that is not installed; says the pip command."""
