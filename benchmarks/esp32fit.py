"""The bench's 100 KB check for the `esp32` profile, for the word size a real ESP32 has.

`convert --board esp32` decides with the 32-bit heap estimate (converters.estimate_heap); the
x64 virtual board's objects are ~1.6x larger, so a model that fits the chip may not fit 100 KB
there. Here each model is converted for the esp32 profile and, when it is accepted, loaded and
run at the profile's 100 KB on a 32-bit board (micropython-esp32sem, benchmarks/board32.py),
outputs compared with TFLM's. Without that board the row says so and gives both estimates, the
64-bit one named as such: nothing is claimed that was not run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from benchmarks.board32 import esp32sem
from converters import ConvertError, convert_tflite
from edgeloop.boards import get_board
from edgeloop.infer import InferError, run_batch_virtual
from edgeloop.vboard import ENV_VAR, VirtualBoardError, identify

PROFILE = "esp32"


@contextlib.contextmanager
def _board(executable: str) -> Iterator[None]:
    """The virtual board's executable for the duration (edgeloop.vboard reads $ENV_VAR)."""
    old = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = executable
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = old


def esp32_fit(tflite: bytes, x: np.ndarray, y_tflm: np.ndarray) -> dict[str, Any]:
    """Fit for the esp32 profile by the 32-bit estimate, and (with a 32-bit board) the truth."""
    prof = get_board(PROFILE)
    try:
        conv = convert_tflite(tflite, heap_limit=prof.heap_bytes, word_bits=prof.word_bits)
        rep, bundle = conv.report, conv.bundle
    except ConvertError as exc:
        rep, bundle = exc.report, None  # type: ignore[attr-defined]
    row: dict[str, Any] = {
        "profile": PROFILE, "heap_bytes": prof.heap_bytes, "word_bits": rep["estimate_word_bits"],
        "fits": rep["fits"], "memory_mode": rep["memory_mode"],
        "estimate_32bit_bytes": rep["heap"]["esp32_bytes"],
        "estimate_64bit_bytes": rep["heap"]["total_bytes"], "measured": None,
        "stream_heap": None if rep["fits"] else rep.get("stream_heap"),
    }
    exe = esp32sem()
    if bundle is None:
        return row
    if exe is None:
        row["note"] = ("no 32-bit board (EDGELOOP_ESP32SEM): not run; the x64 port would need "
                       f"~{row['estimate_64bit_bytes']:,} B (64-bit estimate)")
        return row
    with _board(exe):
        ident = identify()
        m: dict[str, Any] = {"executable": exe, "word_bits": ident.word_bits,
                             "micropython": ident.version}
        try:
            y, stats = run_batch_virtual(bundle, x, prof, kernels="viper", timeout=1800)
        except (InferError, VirtualBoardError) as exc:
            m["error"] = str(exc).strip().splitlines()[-1]
        else:
            n = len(x)
            m.update(loaded=True, identical=bool(np.array_equal(
                y.reshape(n, -1), y_tflm[:n].reshape(n, -1))),
                model_heap_bytes=stats["model_heap_bytes"],
                heap_free_after_load=stats["heap_free_after_load"],
                heap_in_use_after_load=prof.heap_bytes - stats["heap_free_after_load"],
                stream_bytes=stats.get("stream_bytes", 0))
    row["measured"] = m
    return row


def format_rows(rows: list[dict[str, Any]]) -> list[str]:
    """One line per model: the 100 KB esp32 profile by the 32-bit estimate, and what ran."""
    lines = ["esp32 profile (100 KB, 32-bit words; fit by the 32-bit estimate, run on a 32-bit "
             "board when there is one):"]
    for r in rows:
        f = r["esp32"]
        est = (f"est 32-bit {f['estimate_32bit_bytes']:7,d} B, 64-bit "
               f"{f['estimate_64bit_bytes']:7,d} B")
        head = f"  {r['model']:16s} {'fits' if f['fits'] else 'refused':7s} {f['memory_mode']:6s} {est}"
        m = f["measured"]
        if not f["fits"]:
            sh = f.get("stream_heap")
            tail = (f": streamed it would need {sh['esp32_bytes']:,} B (32-bit)" if sh else "")
        elif m is None:
            tail = f": {f.get('note', 'not run')}"
        elif "error" in m:
            tail = f": ON THE {m['word_bits']}-BIT BOARD IT FAILED: {m['error'][:70]}"
        else:
            tail = (f": ran on the {m['word_bits']}-bit board, {m['heap_in_use_after_load']:,} B "
                    f"in use after load, {m['heap_free_after_load']:,} B free, identical "
                    f"{'yes' if m['identical'] else 'NO'}")
        lines.append(head + tail)
    return lines
