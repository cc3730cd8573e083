"""The one error type of the command line."""


class UsageError(Exception):
    """A mistake on the command line or in a file: shown as one line, exit status 2."""
