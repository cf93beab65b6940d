"""invoke() allocates nothing: every op's model runs under micropython.heap_lock() on the
virtual board, with each kernel set (any allocation would raise MemoryError)."""

from __future__ import annotations

import json

from factory import strategies
from factory.singleop import build

_SCRIPT = """
import json, gc, micropython, elrt
elrt.use_kernels(KERNELS)
res = {}
m = elrt.Model()
for name in NAMES:
    m.load(name + ".elb")
    gc.collect()
    err = ""
    micropython.heap_lock()
    try:
        m.invoke()
        m.invoke()
    except MemoryError:
        err = "MemoryError"
    micropython.heap_unlock()
    res[name] = err
print("RESULT" + json.dumps({"kernels": elrt.KERNELS, "res": res}))
"""

# QUANTIZE from float32 input is the one op with float math (floats are heap objects in
# MicroPython); it only occurs at a float model input and is left out here.
OPS = sorted(strategies.STRATEGIES)


def test_invoke_allocates_nothing(board, kernels: str, to_bundle) -> None:
    names = []
    for op in OPS:
        (board.root / f"{op}.elb").write_bytes(to_bundle(build(op, seed=5)))
        names.append(op)
    script = f"KERNELS = {kernels!r}\nNAMES = {names!r}\n" + _SCRIPT
    out = json.loads(board.run(script).check("heap_lock script").stdout.split("RESULT", 1)[1])
    assert out["kernels"] == kernels
    failed = {k: v for k, v in out["res"].items() if v}
    assert not failed, f"invoke() allocated under heap_lock: {failed}"
    assert set(out["res"]) == set(OPS)
