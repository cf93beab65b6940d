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

# Rough fixed cost of the runtime's model object on the board: op records as Python objects,
# tensor memoryviews, kernel dispatch tables (bytes). Measured figures come from the runtime
# benchmark; this keeps the fit check conservative.
RUNTIME_OVERHEAD_BYTES = 6 * 1024
PER_OP_OVERHEAD_BYTES = 160
PER_TENSOR_OVERHEAD_BYTES = 48


@dataclass
class Conversion:
    bundle: bytes
    report: dict


def estimate_heap(arena: int, const_bytes: int, n_ops: int, n_tensors: int,
                  romfs: bool = False) -> dict:
    """Heap the loaded model needs on the board: arena + weights (unless ROMFS) + overheads."""
    tables = n_ops * PER_OP_OVERHEAD_BYTES + n_tensors * PER_TENSOR_OVERHEAD_BYTES
    weights = 0 if romfs else const_bytes
    total = arena + weights + tables + RUNTIME_OVERHEAD_BYTES
    return {"arena_bytes": arena, "weights_in_ram_bytes": weights, "op_table_bytes": tables,
            "runtime_overhead_bytes": RUNTIME_OVERHEAD_BYTES, "total_bytes": total}


def convert_tflite(tflite_bytes: bytes, heap_limit: int | None = None,
                   romfs: bool = False) -> Conversion:
    """Validate and compile an int8 .tflite model; raise ConvertError if it cannot run or fit."""
    model = read_tflite(tflite_bytes)
    compiled = compile_model(model)
    blob = write_bundle(compiled.bundle)
    bun = parse_bundle(blob)  # the bundle must read back through the spec'd reader
    heap = estimate_heap(bun.arena_bytes, bun.const_bytes, len(bun.ops), len(bun.tensors), romfs)
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
            f"{heap['arena_bytes']} B + weights {heap['weights_in_ram_bytes']} B + tables "
            f"{heap['op_table_bytes']} B + runtime {RUNTIME_OVERHEAD_BYTES} B) > board heap "
            f"{heap_limit} B"
            + (f"; with weights read in place from ROMFS (MicroPython 1.25+) it would need "
               f"{heap['total_bytes'] - heap['weights_in_ram_bytes']} B"
               if not romfs and heap['weights_in_ram_bytes'] else "")
        )
        err.report = report  # type: ignore[attr-defined]
        raise err
    return Conversion(blob, report)
