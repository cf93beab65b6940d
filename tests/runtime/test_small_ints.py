"""Bytecode kernels on an ESP32 must not create big ints (MicroPython small ints are 31-bit;
anything larger is a heap allocation, which heap_lock would turn into MemoryError). The virtual
board has 63-bit small ints and cannot show this, so every op's kernel runs here in CPython on
buffers whose values log each integer computed from them."""

from __future__ import annotations

import numpy as np
import pytest
from factory import random_inputs, strategies
from factory.intlog import LoggedInt as Logged
from factory.singleop import build
from factory.tflm import io_details

SMALL_MIN, SMALL_MAX = -(2**30), 2**30 - 1


class LoggedBuf:
    """A byte buffer whose items come out as Logged ints."""

    def __init__(self, mv):
        self.mv = mv

    def __len__(self):
        return len(self.mv)

    def __getitem__(self, i):
        return Logged(self.mv[int(i)])

    def __setitem__(self, i, v):
        self.mv[int(i)] = int(v)


OPS = sorted(strategies.STRATEGIES)


@pytest.mark.parametrize("op", OPS)
def test_kernels_stay_small(cpython_elrt, to_bundle, op: str) -> None:
    model = build(op, seed=8)
    ins, _ = io_details(model)
    x = random_inputs(tuple(ins[0]["shape"]), 3, seed=5, dtype=ins[0]["dtype"])
    m = cpython_elrt.Model()
    m.load(to_bundle(model))
    widest = 0
    for sample in x:
        m.input[:] = np.ascontiguousarray(sample).tobytes()
        Logged.seen = []
        for fn, args in m._plan:
            fn(*[LoggedBuf(a) if isinstance(a, memoryview) else a for a in args])
        if Logged.seen:
            widest = max(widest, max(map(abs, Logged.seen)))
    assert widest <= SMALL_MAX, f"{op}: an intermediate reached {widest} (> 2**30 - 1)"
