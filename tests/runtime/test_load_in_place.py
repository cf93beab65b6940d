"""A bundle given as a read-only buffer (bytes here; a ROMFS file's memoryview on a board) is
used in place: loading it costs the arena and the op table, not a copy of the weights."""

from __future__ import annotations

import json

from factory.singleop import build

_SCRIPT = """
import gc, json, elrt
f = open("m.elb", "rb")
blob = f.read()
f.close()
gc.collect()
free0 = gc.mem_free()
m = elrt.Model()
m.load(blob)
gc.collect()
in_place = free0 - gc.mem_free()
m.input[:] = bytes(len(m.input))
m.invoke()
y_buf = bytes(m.output)
del m
gc.collect()
free0 = gc.mem_free()
m = elrt.Model()
m.load("m.elb")
gc.collect()
from_file = free0 - gc.mem_free()
m.input[:] = bytes(len(m.input))
m.invoke()
print("RESULT" + json.dumps({"in_place": in_place, "from_file": from_file,
                             "arena": m.arena_bytes, "same": bytes(m.output) == y_buf}))
"""


def test_buffer_bundle_not_copied(board, to_bundle) -> None:
    bundle = to_bundle(build("FULLY_CONNECTED", in_features=64, units=32, seed=2))
    (board.root / "m.elb").write_bytes(bundle)
    out = json.loads(board.run(_SCRIPT).check("load in place").stdout.split("RESULT", 1)[1])
    assert out["same"]
    weights = 64 * 32
    # from a file the whole bundle lands in RAM; from a buffer only arena + tables do
    assert out["from_file"] >= len(bundle)
    assert out["in_place"] < out["from_file"] - weights
    assert out["in_place"] >= out["arena"]
