"""The one marker of an expected user error: something fixed by changing a parameter or a file, not the code.

Such an error's message already says what to change, so the command line shows it as that one line without a
traceback (unless asked for one); any other exception is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Base of every expected user error (bad parameter, missing or corrupt file, diverged loss)."""


class UnreadableFileError(UserError):
    """A file this project wrote (checkpoint, model, tensors) cannot be read back: truncated, damaged or another file."""
