"""converters: .tflite (int8) -> EdgeLoop device bundle, plus the golden executor.

Never imports TensorFlow nor edgeloop: it runs wherever numpy and the `tflite` schema package do.
"""

from __future__ import annotations

from dataclasses import dataclass

from converters.bundle import parse_bundle, write_bundle
from converters.compile import SUPPORTED_OPS, compile_model
from converters.errors import ConvertError
from converters.tflite_reader import read_tflite

__all__ = ["Conversion", "ConvertError", "SUPPORTED_OPS", "convert_tflite", "parse_bundle"]

# Heap the runtime needs besides arena and bundle, calibrated on the virtual board (x64 .mpy):
# importing elrt takes ~25 KB (viper kernels; bytecode ~23 KB), and each loaded model adds
# ~230 B per op (plan tuple, views) + ~40 B per tensor + ~0.5 KB (least squares over 11 models).
# Large contiguous blocks (bundle, arena) also need headroom against heap fragmentation.
RUNTIME_OVERHEAD_BYTES = 26 * 1024
MODEL_OVERHEAD_BYTES = 512
PER_OP_OVERHEAD_BYTES = 256
PER_TENSOR_OVERHEAD_BYTES = 48
FRAGMENTATION_MARGIN = 0.10


@dataclass
class Conversion:
    bundle: bytes
    report: dict


def estimate_heap(arena: int, bundle_bytes: int, n_ops: int, n_tensors: int,
                  romfs: bool = False) -> dict:
    """Heap the model needs on the board: the elrt runtime, the arena, the bundle file (elrt
    reads it into RAM and uses the weights in place; nothing with ROMFS), op plan and views."""
    tables = (MODEL_OVERHEAD_BYTES + n_ops * PER_OP_OVERHEAD_BYTES
              + n_tensors * PER_TENSOR_OVERHEAD_BYTES)
    weights = 0 if romfs else bundle_bytes
    margin = int(FRAGMENTATION_MARGIN * (arena + weights))
    total = arena + weights + tables + RUNTIME_OVERHEAD_BYTES + margin
    return {"arena_bytes": arena, "weights_in_ram_bytes": weights, "op_table_bytes": tables,
            "runtime_overhead_bytes": RUNTIME_OVERHEAD_BYTES,
            "fragmentation_margin_bytes": margin, "total_bytes": total}


def convert_tflite(tflite_bytes: bytes, heap_limit: int | None = None,
                   romfs: bool = False) -> Conversion:
    """Validate and compile an int8 .tflite model; raise ConvertError if it cannot run or fit."""
    model = read_tflite(tflite_bytes)
    compiled = compile_model(model)
    blob = write_bundle(compiled.bundle)
    bun = parse_bundle(blob)  # the bundle must read back through the spec'd reader
    arena_b, n_ops, n_t = bun.arena_bytes, len(bun.ops), len(bun.tensors)
    heap = estimate_heap(arena_b, len(blob), n_ops, n_t, romfs)
    ins = [bun.tensors[i] for i in bun.inputs]
    outs = [bun.tensors[i] for i in bun.outputs]
    report = {
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
        "estimated_heap_bytes": heap["total_bytes"],
        "heap_limit_bytes": heap_limit,
        "fits": heap_limit is None or heap["total_bytes"] <= heap_limit,
        "inputs": [{"shape": list(t.shape), "scale": t.scale, "zero_point": t.zero_point}
                   for t in ins],
        "outputs": [{"shape": list(t.shape), "scale": t.scale, "zero_point": t.zero_point}
                    for t in outs],
        "format_version": bun.format_version,
    }
    if not report["fits"]:
        err = ConvertError(
            f"model does not fit: estimated heap {heap['total_bytes']} B (arena "
            f"{heap['arena_bytes']} B + bundle {heap['weights_in_ram_bytes']} B + tables "
            f"{heap['op_table_bytes']} B + runtime {RUNTIME_OVERHEAD_BYTES} B + fragmentation "
            f"margin {heap['fragmentation_margin_bytes']} B) > board heap "
            f"{heap_limit} B"
            + (f"; with the bundle read in place from ROMFS (MicroPython 1.25+) it would need "
               f"{estimate_heap(arena_b, 0, n_ops, n_t, True)['total_bytes']} B"
               if not romfs and heap['weights_in_ram_bytes'] else "")
        )
        err.report = report  # type: ignore[attr-defined]
        raise err
    return Conversion(blob, report)
