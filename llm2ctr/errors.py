"""Exceptions shared by every stage (kept out of the CLI package so stages need not import it)."""


class UserError(Exception):
    """An error the user can fix (bad input, missing artifact); printed without a traceback."""
