"""The trainer's user-facing error: the message says what is wrong and where (file, key, line)."""


class TrainerError(ValueError):
    """Bad data, a bad config or an impossible request; the CLI prints it as one line."""
