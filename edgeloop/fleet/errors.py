"""The fleet's user-facing error (turned into a one-line message by the CLI)."""

from edgeloop.errors import EdgeLoopError


class FleetError(EdgeLoopError):
    pass
