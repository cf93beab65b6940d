"""Offline arena plan: greedy by size with reuse by lifetime, like TFLM's GreedyMemoryPlanner."""

from __future__ import annotations

from dataclasses import dataclass

ALIGN = 4


@dataclass
class Buffer:
    key: int
    size: int
    first: int  # first op index that needs it (-1: model input, live from the start)
    last: int  # last op index that needs it (n_ops: model output, live to the end)
    offset: int = -1


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan(buffers: list[Buffer]) -> int:
    """Assign offsets in place (largest first, lowest gap that fits); return arena bytes."""
    placed: list[Buffer] = []
    order = sorted(buffers, key=lambda b: (-b.size, b.first, b.key))
    for b in order:
        size = _align(max(b.size, 1))
        live = sorted(
            (p for p in placed if p.first <= b.last and b.first <= p.last), key=lambda p: p.offset
        )
        off = 0
        for p in live:
            if off + size <= p.offset:
                break
            off = max(off, p.offset + _align(max(p.size, 1)))
        b.offset = off
        placed.append(b)
    return max((b.offset + _align(max(b.size, 1)) for b in placed), default=0)
