"""The one exception type that means "the user gave us something wrong".

The CLI turns a `UserError` into one line on stderr and exit code 2; anything else is a bug and
keeps its traceback.
"""


class UserError(Exception):
    """Bad input from the user: the message says what is wrong and how to fix it."""


class TrainingDiverged(UserError, RuntimeError):
    """Training cannot go on (non-finite losses or weights): one line for the CLI, a
    RuntimeError for library callers."""
