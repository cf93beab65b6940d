"""Model.invoke_timed (the per-op profile behind `edgeloop infer --profile` and the bench): one
step per plan entry mapped to its bundle op, the same outputs as invoke(), and no allocation."""

from __future__ import annotations

import json

from factory.singleop import build

_SCRIPT = """
import json, gc, array, micropython, elrt
elrt.use_kernels(KERNELS)
res = {}
for name in NAMES:
    m = elrt.Model()
    m.load(name + ".elb")
    for i in range(len(m.input)):
        m.input[i] = (i * 37) & 0xFF
    m.invoke()
    want = bytes(m.output)
    us = array.array("i", [0] * len(m.plan_ops))
    gc.collect()
    err = ""
    micropython.heap_lock()
    try:
        m.invoke_timed(us)
        m.invoke_timed(us)
    except MemoryError:
        err = "MemoryError"
    micropython.heap_unlock()
    res[name] = {"err": err, "same": bytes(m.output) == want, "plan_ops": list(m.plan_ops),
                 "n_ops": m.n_ops, "us": list(us)}
print("RESULT" + json.dumps(res))
"""


def test_invoke_timed_profiles_every_step_without_allocating(board, kernels, to_bundle) -> None:
    names = ["FULLY_CONNECTED", "CONCATENATION", "CONV_2D"]
    for op in names:
        (board.root / f"{op}.elb").write_bytes(to_bundle(build(op, seed=3)))
    script = f"KERNELS = {kernels!r}\nNAMES = {names!r}\n" + _SCRIPT
    out = json.loads(board.run(script).check("profile script").stdout.split("RESULT", 1)[1])
    for name, r in out.items():
        assert r["err"] == "", f"{name}: invoke_timed allocated under heap_lock"
        assert r["same"], f"{name}: invoke_timed gave other outputs than invoke"
        assert sorted(set(r["plan_ops"])) == list(range(r["n_ops"])), name
        assert len(r["us"]) == len(r["plan_ops"]) and all(u >= 0 for u in r["us"]), name
    # CONCATENATION runs one copy step per input, all mapped to its one bundle op
    assert len(out["CONCATENATION"]["plan_ops"]) >= 2
