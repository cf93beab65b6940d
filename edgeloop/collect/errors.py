"""Typed collect errors; the CLI turns them into one-line messages (edgeloop/cli.py)."""

from __future__ import annotations

from edgeloop.errors import EdgeLoopError


class CollectError(EdgeLoopError):
    """Bad options or an output folder that cannot take these recordings."""


class LinkFault(CollectError):
    """The link to the board failed mid-collection: samples lost or corrupted on the way, the
    board restarted, or it went quiet. Complete recordings are kept; the partial one is not."""


class SampleGap(LinkFault):
    """Samples missing from the stream (lost on the board, or a frame lost on the wire)."""

    def __init__(self, message: str, at_seq: int, missing: int) -> None:
        super().__init__(message)
        self.at_seq = at_seq
        self.missing = missing
