"""Run a batch of int8 inputs through a bundle on a board, over any edgeloop.link Transport.

The board loads the bundle with `elrt`, reads each input from a raw file straight into the
model's input view, times `invoke()` with `time.ticks_us`, and writes the outputs raw to a file,
so batches of any size never pass through stdout. Stats: per-inference ms, the heap the loaded
model takes (gc.mem_free before/after load), the arena bytes and the kernel set that ran.
This is the one on-board inference script: `edgeloop infer` and deploy's verification use it.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeloop.boards import BoardProfile, get_board
from edgeloop.errors import EdgeLoopError
from edgeloop.firmware import build_firmware, firmware_sources
from edgeloop.vboard import VirtualBoard, identify, mpy_arch

if TYPE_CHECKING:
    from edgeloop.link.transport import Transport

KERNEL_CHOICES = ("auto", "viper", "bytecode")
_MARK = "ELRT_STATS "

# Runs on the board. Placeholders: kernels, n, model and the scratch files inputs -> outputs,
# ticks (inputs.bin, outputs.bin, ticks.bin unless the caller names others).
_DEVICE_SCRIPT = """\
import gc, time, json, struct
import elrt
k = %(kernels)r
if k != "auto":
    elrt.use_kernels(k)
gc.collect()
free0 = gc.mem_free()
m = elrt.Model()
t0 = time.ticks_us()
m.load(%(model)r)
load_ms = time.ticks_diff(time.ticks_us(), t0) / 1000
gc.collect()
free1 = gc.mem_free()
inp = m.input
out = m.output
n_in = len(inp)
n_out = len(out)
%(profile_setup)stick = bytearray(4)
fi = open(%(inputs)r, "rb")
fo = open(%(outputs)r, "wb")
ft = open(%(ticks)r, "wb")
for i in range(%(n)d):
    if fi.readinto(inp) != n_in:
        raise OSError("%(inputs)s: short read at sample %%d" %% i)
    t0 = time.ticks_us()
    %(invoke)s
    struct.pack_into("<I", tick, 0, time.ticks_diff(time.ticks_us(), t0))
%(profile_fold)s
    fo.write(out)
    ft.write(tick)
fi.close()
fo.close()
ft.close()
print("%(mark)s" + json.dumps({
    "kernels": m.kernels, "kernel_sets": m.kernel_sets,
    "model_heap_bytes": free0 - free1, "arena_bytes": m.arena_bytes,
    "load_ms": load_ms, "input_bytes": n_in, "output_bytes": n_out,
    "input_shape": list(m.input_shape), "output_shape": list(m.output_shape),
    "output_dtype": m.output_dtype, "heap_free_after_load": free1,
    "stream_bytes": getattr(m, "stream_bytes", 0),%(profile_stats)s
}))
"""
# With profile=True (infer --profile) the script times every op of every inference; these
# parts are left out otherwise: the script is compiled on the board, into its heap.
_PROFILE_SETUP = """\
if not hasattr(m, "invoke_timed"):
    raise OSError("this board's elrt has no per-op profile (invoke_timed): redeploy it")
import array
steps = array.array("i", [0] * len(m.plan_ops))
one = array.array("i", [0] * len(m.plan_ops))
mins = array.array("i", [0x3FFFFFFF] * len(m.plan_ops))
"""
_PROFILE_FOLD = """\
    for j in range(len(one)):
        steps[j] += one[j]
        if one[j] < mins[j]:
            mins[j] = one[j]
        one[j] = 0
"""
_PROFILE_STATS = """
    "profile_us": list(steps), "profile_min_us": list(mins), "plan_ops": list(m.plan_ops),"""
# Outputs and per-inference times go to files (outputs.bin, ticks.bin): a batch of any size
# needs no board memory beyond the model and never passes through the console.


class InferError(EdgeLoopError):
    """A batch could not be run: bad input, a bundle the board refused, or a board failure."""


def elrt_sources() -> list[Path]:
    """The device files the runtime needs (elrt/ only; nothing else goes to a scratch board)."""
    return [p for p in firmware_sources() if p.parts[0] == "elrt"]


def prepare_board(root: Path, compiled: bool = True) -> VirtualBoard:
    """Lay elrt out in `root` (.mpy for the virtual board's arch, as a flashed board has it, or
    sources) for the virtual board."""
    build_firmware(root, mpy_arch() if compiled else None, elrt_sources())
    return VirtualBoard(root)


SCRATCH_FILES = ("inputs.bin", "outputs.bin", "ticks.bin")  # inputs, outputs, ticks
# Where `infer` puts the model it runs: never over the deployed model.elb (the app's model)
INFER_MODEL = "infer_model.tmp"


def device_script(
    n: int, kernels: str = "auto", model_path: str = "model.elb",
    scratch: tuple[str, str, str] = SCRATCH_FILES, profile: bool = False,
) -> str:
    """The MicroPython program that runs n samples from inputs.bin (used by every transport).
    profile: time every op of every inference on the board (stats profile_us/plan_ops)."""
    if kernels not in KERNEL_CHOICES:
        raise InferError(f"--kernels must be one of {', '.join(KERNEL_CHOICES)}, not {kernels!r}")
    inputs, outputs, ticks = scratch
    return _DEVICE_SCRIPT % {"kernels": kernels, "n": n, "mark": _MARK, "model": model_path,
                             "inputs": inputs, "outputs": outputs, "ticks": ticks,
                             "profile_setup": _PROFILE_SETUP if profile else "",
                             "invoke": "m.invoke_timed(one)" if profile else "m.invoke()",
                             "profile_fold": _PROFILE_FOLD if profile else "",
                             "profile_stats": _PROFILE_STATS if profile else ""}


def parse_stats(stdout: str, ticks: bytes) -> dict[str, Any]:
    """The stats line the device script prints plus its ticks.bin (one u32 µs per inference),
    as a dict with latency summaries."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(_MARK):
            stats = json.loads(line[len(_MARK):])
            break
    else:
        raise InferError(f"the board printed no stats line; output was:\n{stdout[-2000:]}")
    ms = [u / 1000.0 for u in np.frombuffer(ticks, dtype="<u4").tolist()]
    stats["latency_ms"] = ms
    stats["median_ms"] = statistics.median(ms) if ms else 0.0
    stats["mean_ms"] = statistics.fmean(ms) if ms else 0.0
    return stats


def _outputs(raw: bytes, n: int, stats: dict[str, Any]) -> np.ndarray:
    dtype = np.float32 if stats["output_dtype"] == "float32" else np.int8
    shape = tuple(stats["output_shape"])
    y = np.frombuffer(raw, dtype=dtype)
    per = int(np.prod(shape))
    if y.size != n * per:
        raise InferError(f"board wrote {y.size} output values, expected {n} x {per}")
    return y.reshape((n, *shape)).copy()


def model_io(bundle: bytes) -> dict[str, Any]:
    """Input/output shape and dtype of a bundle, read on the host (refuses a corrupt bundle).
    Batches return the first model output (n_outputs says how many there are)."""
    from converters.bundle import DT_FLOAT32, parse_bundle
    from converters.errors import ConvertError

    try:
        b = parse_bundle(bundle)
    except ConvertError as exc:
        raise InferError(f"bad bundle: {exc}") from exc
    if len(b.inputs) != 1:
        raise InferError(f"infer runs single-input models; this bundle has {len(b.inputs)} inputs")
    ti, to = b.tensors[b.inputs[0]], b.tensors[b.outputs[0]]
    return {
        "n_outputs": len(b.outputs),
        "input_shape": tuple(ti.shape),
        "input_dtype": np.dtype(np.float32 if ti.dtype == DT_FLOAT32 else np.int8),
        "output_shape": tuple(to.shape),
        "output_dtype": np.dtype(np.float32 if to.dtype == DT_FLOAT32 else np.int8),
    }


def check_inputs(x: np.ndarray, io: dict[str, Any], where: str = "inputs") -> np.ndarray:
    """x must be (batch, *model input shape) of the model's input dtype; says what is expected.

    For a batch-1 model, (batch, *input shape[1:]) is accepted too: what a TFLite user passes
    (the batch replaces the model's leading 1)."""
    x = np.asarray(x)
    want = tuple(io["input_shape"])
    if len(want) >= 1 and want[0] == 1 and x.ndim == len(want) and tuple(x.shape[1:]) == want[1:]:
        x = x.reshape(len(x), *want)
    if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want or x.shape[0] == 0:
        also = f" or (batch, {', '.join(str(d) for d in want[1:])})" if want[:1] == (1,) else ""
        raise InferError(
            f"{where}: shape {x.shape} does not fit the model: expected (batch, "
            f"{', '.join(str(d) for d in want)}){also} with batch >= 1"
        )
    if x.dtype != io["input_dtype"]:
        raise InferError(f"{where}: dtype {x.dtype}, the model input is {io['input_dtype']} "
                         f"(shape (batch, {', '.join(str(d) for d in want)}))")
    return np.ascontiguousarray(x)


def run_batch_virtual(
    bundle: bytes,
    x: np.ndarray,
    profile: BoardProfile | str = "virtual",
    kernels: str = "auto",
    workdir: Path | str | None = None,
    compiled: bool = True,
    timeout: float | None = None,
    op_profile: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Run x (first axis = batch, rest = the model's input shape) on a scratch virtual board
    whose heap is the profile's; returns (outputs with batch first, stats). op_profile: time
    every op on the board (stats profile_us, plan_ops; edgeloop.profile makes the table)."""
    from edgeloop.link.virtual import VirtualTransport

    prof = get_board(profile) if isinstance(profile, str) else profile
    x = check_inputs(x, model_io(bundle))
    with tempfile.TemporaryDirectory(prefix="edgeloop-infer-", dir=workdir) as tmp:
        root = Path(tmp)
        build_firmware(root, mpy_arch() if compiled else None, elrt_sources())
        try:
            y, stats = run_batch_transport(
                VirtualTransport(root, prof), bundle, x, kernels, timeout=timeout,
                op_profile=op_profile, where=f"board profile {prof.name}: "
                f"{prof.heap_bytes // 1024} KB heap, bundle {len(bundle)} B",
            )
        except InferError as exc:
            word = identify().word_bits
            if word <= prof.word_bits or "MemoryError" not in str(exc):
                raise
            # `convert --board esp32` fits a model by the 32-bit chip's heap; the x64 port's
            # objects are ~1.6x larger, so the same heap may not hold it there
            raise InferError(
                f"{exc}; this virtual board is {word}-bit, the {prof.name} profile "
                f"{prof.word_bits}-bit: run it on a {prof.word_bits}-bit board "
                f"(EDGELOOP_MICROPYTHON=.../micropython-esp32sem) for the chip's heap"
            ) from exc
    stats["board"] = prof.name
    return y, stats


def run_batch_transport(
    transport: Transport,
    bundle: bytes,
    x: np.ndarray,
    kernels: str = "auto",
    timeout: float | None = None,
    model_path: str = INFER_MODEL,
    put_model: bool = True,
    cleanup: bool = False,
    where: str | None = None,
    scratch: tuple[str, str, str] = SCRATCH_FILES,
    op_profile: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The batch run through any edgeloop.link Transport (exec, fs_put, fs_read) whose board
    has elrt. put_model=False runs the model already at model_path (deploy's verification);
    cleanup removes the scratch files (inputs, outputs, ticks, and the model when it was put
    there) from the board afterwards, whatever happened."""
    x = check_inputs(x, model_io(bundle))
    inputs, outputs, ticks = scratch
    try:
        if put_model:
            transport.fs_put(bytes(bundle), model_path)
        transport.fs_put(x.tobytes(), inputs)
        out = transport.exec(device_script(len(x), kernels, model_path, scratch, op_profile),
                             timeout=timeout if timeout is not None else 60.0 + 2.0 * len(x))
        stats = parse_stats(out, transport.fs_read(ticks))
        y = _outputs(transport.fs_read(outputs), len(x), stats)
    except EdgeLoopError as exc:  # the link's BoardError carries the board's traceback
        if isinstance(exc, InferError):
            raise
        detail = getattr(exc, "board_traceback", "") or str(exc)
        raise InferError(
            f"{_board_failure(detail)} ({where or 'on the ' + getattr(transport, 'name', 'board')})"
        ) from exc
    finally:
        if cleanup:
            for name in (*scratch, model_path) if put_model else scratch:
                try:
                    transport.fs_remove(name, missing_ok=True)
                except EdgeLoopError:
                    pass  # the board is gone: the error above says so
    return y, stats


def run_on_deployed_board(
    transport: Transport, bundle: bytes, x: np.ndarray, kernels: str = "auto",
    op_profile: bool = False, where: str | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """`infer --port`: a board that `edgeloop deploy` set up (elrt and the user's model.elb).
    The model runs from a scratch file beside the deployed one, which stays untouched, and
    every scratch file is removed afterwards."""
    from edgeloop.link.transport import BoardError

    name = where or getattr(transport, "name", "board")
    try:
        transport.exec("import elrt", timeout=20.0)
    except BoardError as exc:
        raise InferError(f"no working elrt runtime on {name} ({exc}): "
                         "run `edgeloop deploy` first") from exc
    return run_batch_transport(transport, bundle, x, kernels, model_path=INFER_MODEL,
                               cleanup=True, where=f"on {name}",
                               op_profile=op_profile)


def _board_failure(text: str) -> str:
    for line in reversed(text.strip().splitlines()):
        if "BundleError" in line or "MemoryError" in line:
            return f"the board refused the model: {line.strip()}"
    return f"inference failed on the board:\n{text[-2000:]}"
