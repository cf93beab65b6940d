"""What streaming the weights from flash costs a board (the host's mirror of elrt/stream.py).

When a bundle does not fit the board's heap, elrt keeps its constants in the bundle file and
reads each op's constants, just before the op, into one buffer; a fully-connected layer larger
than the buffer runs in tiles of output rows, a convolution in tiles of output channels (each
tile also writes its channels into the buffer, then a copy step puts them in place). This module computes, from the bundle alone, the
buffer elrt will allocate, how many read steps and tiles the plan gets, and the heap that takes,
so `convert` can choose and report the mode for a board.
"""

from __future__ import annotations

from converters import bundle as B
from converters.registry import BY_NAME

_FC = BY_NAME["FULLY_CONNECTED"].opcode
_CONV = BY_NAME["CONV_2D"].opcode
_CONCAT = BY_NAME["CONCATENATION"].opcode

TILE_BYTES = 16384  # elrt.stream.TILE_BYTES: FC and conv constants above this are tiled
# Heap per plan step on the 64-bit virtual board (a step tuple, its argument tuple, the read
# offsets and views): 350 B measured with the AD autoencoder's 52 streamed steps, rounded up.
PER_STEP_BYTES = 400


def _a4(n: int) -> int:
    return (n + 3) & ~3


def _span(refs: list[tuple[int, int]]) -> int:
    """Bytes an op's constants take in the buffer: contiguous 4-aligned runs, as elrt reads."""
    total, end = 0, -1
    for off, nb in sorted(set((o, _a4(n)) for o, n in refs)):
        if off <= end:
            total += max(0, off + nb - end)
            end = max(end, off + nb)
        else:
            total += nb
            end = off + nb
    return total


def stream_plan(bun: B.Bundle, cap: int = TILE_BYTES) -> dict:
    """buffer_bytes, steps (plan steps when streamed), tiled_ops, tiles and meta_bytes (the
    tables read into RAM) for a parsed bundle."""
    buffer = steps = tiles = 0
    tiled = []
    for k, op in enumerate(bun.ops):
        refs = [(bun.tensors[t].offset, bun.tensors[t].nbytes) for t in op.tensors
                if bun.tensors[t].kind == B.KIND_CONST]
        n_steps = max(1, op.params[0]) if op.opcode == _CONCAT else 1
        span = _span(refs)
        if not refs:
            steps += n_steps
            continue
        if op.opcode == _FC and span > cap:
            batches, depth, odepth = op.params[:3]
            rows = max(1, cap // (_a4(depth) + 12))
            n_tiles = -(-odepth // rows)
            tiles += n_tiles
            tiled.append(k)
            steps += n_tiles * (1 + batches)
            span = max(cap, _a4(depth) + 12)
        elif op.opcode == _CONV and span > cap:
            per, unit = conv_tile_channels(op.params, refs, cap)
            n_tiles = -(-op.params[6] // per)
            tiles += n_tiles
            tiled.append(k)
            steps += 3  # one step runs the tiles; its two sets of views weigh about two more
            span = max(cap, unit)
        else:
            steps += 2 * n_steps
        buffer = max(buffer, span)
    meta = B.HEADER_SIZE + _meta_bytes(bun)
    return {"buffer_bytes": buffer, "steps": steps, "tiled_ops": tiled, "tiles": tiles,
            "meta_bytes": meta, "tile_cap_bytes": cap}


def conv_tile_channels(params: tuple[int, ...] | list[int], refs: list[tuple[int, int]],
                       cap: int) -> tuple[int, int]:
    """(output channels per tile, buffer bytes of a one-channel tile) of a CONV_2D whose
    constants exceed cap, as elrt.stream._tile_conv plans it: per tile its filters, bias,
    multiplier and shift words and its channels of the output (batches * oh * ow each)."""
    batches, oh, ow, oc = params[0], params[4], params[5], params[6]
    ksz = refs[0][1] // oc
    px = batches * oh * ow
    unit = _a4(ksz) + 12 + px
    per = cap // (ksz + 12 + px)
    while per > 0 and _a4(per * ksz) + (12 + px) * per > cap:
        per -= 1
    return max(per, 1), unit


def _meta_bytes(bun: B.Bundle) -> int:
    """Body bytes before the constant section (body header, tensor table, io and op lists)."""
    ops = sum(4 * (3 + len(op.tensors) + len(op.params)) for op in bun.ops)
    return 48 + 36 * len(bun.tensors) + 4 * (len(bun.inputs) + len(bun.outputs)) + ops
