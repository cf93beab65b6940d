"""The error type every user-facing failure derives from; the CLI turns it into a message."""


class EdgeLoopError(Exception):
    """A failure the user can act on: the message says what is wrong and where."""
