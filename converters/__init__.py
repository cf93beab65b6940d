"""converters: .tflite (int8) -> EdgeLoop device bundle, plus the golden executor.

Never imports TensorFlow nor edgeloop: it runs wherever numpy and the `tflite` schema package do.
"""

from __future__ import annotations

from dataclasses import dataclass

from converters.bundle import parse_bundle, write_bundle
from converters.compile import compile_model
from converters.errors import ConvertError
from converters.registry import SUPPORTED_OPS, kernel_families
from converters.stream import PER_STEP_BYTES, TILE_BYTES, stream_plan
from converters.tflite_reader import read_tflite

__all__ = ["Conversion", "ConvertError", "SUPPORTED_OPS", "convert_tflite", "parse_bundle"]

# Heap the board needs for a model, calibrated on the virtual board (x64 .mpy, 64-bit objects) as
# the smallest heap on which edgeloop.infer.run_batch_virtual (import elrt, load, invoke, write
# the outputs) runs with every op family on its viper kernels, over 24 models (4 benchmark,
# 9 Keras factory, 11 single-op; bundles 1-287 KB, arenas to 57 KB):
#   need ~= 1.02 * (arena + bundle) + 25.5 KB + 300 B/op + 100 B per tensor reference
#           + 0.95 KB per viper op family the model imports besides fc,
# residuals -3.0 .. +5.9 KB (the unix port's conservative GC keeps load temporaries alive at
# random: the same model fails or runs 2 KB apart), hence a 4 KB safety margin. The 25.5 KB:
# import elrt (17.7 KB, with the fc family its self-check uses; viper machine code lives outside
# the GC heap), the interpreter's ~1 KB, the load-time peak (.mpy import, parse temporaries) and
# ~2 KB for the application's own objects (the infer script: files, stats). 1.02: the GC
# allocation table (1/80 of the heap) and block rounding of the two large buffers. Per op: plan
# tuple and its argument tuple; per reference: a memoryview. Per family: its module's function
# objects and globals (elrt/kv_<family>.mpy, imported at load for the families a bundle uses).
# On a 32-bit board (measured on the 32-bit float32 unix port, `make test-esp32sem`) the heap in
# use after load is 14-24 % of (runtime + tables) smaller: pointers halve, but the bundle, the
# arena, the GC's block rounding and the headroom a run needs beyond its load do not (keras
# seed 26: 61.9 KB in use, runs from 76 KB). `esp32_bytes` is the estimate for 32-bit boards
# (tables and runtime scaled by ESP32_OBJECT_SCALE, 0.85: every near-limit model of
# tests/exactness runs at it; ResNet-8 streamed: 99.8 KB estimated, runs from 87 KB on the
# 32-bit board); tests/exactness checks each estimate on its own word size. `fits` is decided
# by the estimate for the board's word size (convert_tflite(word_bits=...): 32 for a real
# ESP32 profile, 64 for the x64 virtual board), so a 32-bit chip is not refused a model on the
# 64-bit figure and the 64-bit virtual board is not promised a model on the 32-bit one.
# 25.5 KB re-measured with elrt's streaming hooks (+0.6 KB), +3 KB since elrt checks every op's
# params against its tensors at load (elrt/extents.mpy: 2.8 KB of heap on x64, measured), so a
# crafted bundle is refused instead of crashing the board.
RUNTIME_OVERHEAD_BYTES = 28 * 1024 + 512
PER_OP_OVERHEAD_BYTES = 300
PER_REF_OVERHEAD_BYTES = 100
PER_FAMILY_OVERHEAD_BYTES = 960
BLOCK_FACTOR = 0.02
SAFETY_MARGIN_BYTES = 4096
ESP32_OBJECT_SCALE = 0.85  # 32-bit words: runtime + tables take 76-86 % of their x64 heap (measured)
@dataclass
class Conversion:
    bundle: bytes
    report: dict


def estimate_heap(arena: int, bundle_bytes: int, n_ops: int, n_tensors: int,
                  romfs: bool = False, n_refs: int | None = None,
                  n_families: int | None = None) -> dict:
    """Heap the model needs on the board: the elrt runtime, the arena, the bundle file (elrt
    reads it into RAM and uses the weights in place; nothing with ROMFS), op plan and views.
    n_refs = tensor references over all ops (defaults to n_tensors); n_families = viper kernel
    modules imported besides fc (defaults to one per op, at most 8)."""
    refs = n_tensors if n_refs is None else n_refs
    fams = min(n_ops, 8) if n_families is None else n_families
    # tensors cost only through the references ops make to them
    tables = (n_ops * PER_OP_OVERHEAD_BYTES + refs * PER_REF_OVERHEAD_BYTES
              + fams * PER_FAMILY_OVERHEAD_BYTES)
    weights = 0 if romfs else bundle_bytes
    margin = int(BLOCK_FACTOR * (arena + weights)) + SAFETY_MARGIN_BYTES
    total = arena + weights + tables + RUNTIME_OVERHEAD_BYTES + margin
    esp32 = arena + weights + margin + int(ESP32_OBJECT_SCALE * (tables + RUNTIME_OVERHEAD_BYTES))
    return {"arena_bytes": arena, "weights_in_ram_bytes": weights, "op_table_bytes": tables,
            "runtime_overhead_bytes": RUNTIME_OVERHEAD_BYTES,
            "fragmentation_margin_bytes": margin, "total_bytes": total, "esp32_bytes": esp32}


def estimate_stream_heap(ram: dict, arena: int, stream: dict, n_families: int) -> dict:
    """Heap with the constants streamed: arena, the stream buffer, the tables read into RAM and
    the streamed plan's steps instead of the bundle (same runtime overhead and margins)."""
    buf = stream["buffer_bytes"]
    tables = (stream["meta_bytes"] + stream["steps"] * PER_STEP_BYTES
              + n_families * PER_FAMILY_OVERHEAD_BYTES)
    margin = int(BLOCK_FACTOR * (arena + buf)) + SAFETY_MARGIN_BYTES
    total = arena + buf + tables + RUNTIME_OVERHEAD_BYTES + margin
    esp32 = arena + buf + margin + int(ESP32_OBJECT_SCALE * (tables + RUNTIME_OVERHEAD_BYTES))
    return dict(ram, weights_in_ram_bytes=0, stream_buffer_bytes=buf, op_table_bytes=tables,
                fragmentation_margin_bytes=margin, total_bytes=total, esp32_bytes=esp32)


def convert_tflite(tflite_bytes: bytes, heap_limit: int | None = None,
                   romfs: bool = False, word_bits: int = 64) -> Conversion:
    """Validate and compile an int8 .tflite model; raise ConvertError if it cannot run or fit.

    word_bits: the board's machine word (edgeloop.boards.BoardProfile.word_bits); the fit check
    and `estimated_heap_bytes` use the heap estimate for it (objects on a 32-bit board are
    smaller; the default 64 is the x64 virtual board's, the larger figure)."""
    if word_bits not in (32, 64):
        raise ValueError(f"word_bits must be 32 or 64, not {word_bits!r}")
    est = lambda h: _word_estimate(h, word_bits)  # noqa: E731
    model = read_tflite(tflite_bytes)
    compiled = compile_model(model)
    blob = write_bundle(compiled.bundle)
    bun = parse_bundle(blob)  # the bundle must read back through the spec'd reader
    arena_b, n_ops, n_t = bun.arena_bytes, len(bun.ops), len(bun.tensors)
    n_refs = sum(len(op.tensors) for op in bun.ops)
    n_fams = len(kernel_families(op.opcode for op in bun.ops))
    heap = estimate_heap(arena_b, len(blob), n_ops, n_t, romfs, n_refs, n_fams)
    ins = [bun.tensors[i] for i in bun.inputs]
    outs = [bun.tensors[i] for i in bun.outputs]
    # Memory mode for the board: the whole bundle in RAM, in place from ROMFS, or (when that
    # does not fit) the constants streamed from the bundle file op by op (converters/stream.py).
    mode, stream, sheap = ("romfs" if romfs else "ram"), None, None
    if not romfs and heap_limit is not None and est(heap) > heap_limit:
        # elrt sizes the buffer to the heap the arena leaves (smaller tiles when it is short):
        # the largest tile cap whose estimate fits, else the smallest estimate
        for cap in (TILE_BYTES, 8192, 4096, 2048, 1024, 512):
            st = stream_plan(bun, cap)
            sh = estimate_stream_heap(heap, arena_b, st, n_fams)
            if sheap is None or est(sh) < est(sheap):
                stream, sheap = st, sh
            if est(sh) <= heap_limit:
                stream, sheap = st, sh
                break
        if est(sheap) <= heap_limit:
            mode, heap = "stream", sheap
    report = {
        "memory_mode": mode,
        "stream": stream,
        "stream_heap": sheap,  # the streamed plan's heap when it was considered, else None
        "ops": compiled.op_reports,
        "total_macs": sum(r["macs"] for r in compiled.op_reports),
        "total_params": sum(r["params"] for r in compiled.op_reports),
        "n_ops": len(bun.ops),
        "tflite_ops": len(model.ops),
        "arena_bytes": bun.arena_bytes,
        "const_bytes": bun.const_bytes,
        "bundle_bytes": len(blob),
        "tflite_bytes": len(tflite_bytes),
        "heap": heap,
        "estimated_heap_bytes": est(heap),
        "estimate_word_bits": word_bits,
        "heap_limit_bytes": heap_limit,
        "fits": heap_limit is None or est(heap) <= heap_limit,
        "inputs": [{"shape": list(t.shape), "scale": t.scale, "zero_point": t.zero_point}
                   for t in ins],
        "outputs": [{"shape": list(t.shape), "scale": t.scale, "zero_point": t.zero_point}
                    for t in outs],
        "format_version": bun.format_version,
    }
    if not report["fits"]:
        err = ConvertError(
            f"model does not fit: estimated heap {est(heap)} B on a {word_bits}-bit board (arena "
            f"{heap['arena_bytes']} B + bundle {heap['weights_in_ram_bytes']} B + tables "
            f"{heap['op_table_bytes']} B + runtime {RUNTIME_OVERHEAD_BYTES} B"
            + (f" (tables and runtime x{ESP32_OBJECT_SCALE} for 32-bit objects)"
               if word_bits == 32 else "")
            + f" + block/safety margin {heap['fragmentation_margin_bytes']} B) > board heap "
            f"{heap_limit} B"
            + (f"; with the bundle read in place from ROMFS (MicroPython 1.25+) it would need "
               f"{est(estimate_heap(arena_b, 0, n_ops, n_t, True, n_refs, n_fams))} B"
               if not romfs and heap['weights_in_ram_bytes'] else "")
            + (f"; with the weights streamed from flash (buffer {stream['buffer_bytes']} B) "
               f"{est(sheap)} B" if sheap else "")
        )
        err.report = report  # type: ignore[attr-defined]
        raise err
    return Conversion(blob, report)


def _word_estimate(heap: dict, word_bits: int) -> int:
    """The heap estimate for a board of this word size (32: a real ESP32, 64: the x64 port)."""
    return heap["esp32_bytes"] if word_bits == 32 else heap["total_bytes"]
