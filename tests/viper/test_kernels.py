"""The viper kernels (every kv_* family) == kernels_py on the virtual board, op by op, and ==
the int32-checked emulation of the viper source (a 32-bit board's semantics) in CPython.

All cases of a test run in one board process; each viper kernel call happens under
micropython.heap_lock(), which proves it allocates nothing (tests/runtime holds kernels_py to
the same rule).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_cases import OPS, make_case

from edgeloop.vboard import VirtualBoard

_BOARD_SCRIPT = """
import json, binascii, micropython
import kernels_viper as kv
import kernels_py as kp
cases = json.load(open('cases.json'))
callers = {}
res = []
for op, raw, out in cases:
    n = len(raw)
    if n not in callers:
        src = 'def call(f, a):\\n    f(' + ', '.join('a[%d]' % i for i in range(n)) + ')\\n'
        g = {}
        exec(src, g)
        callers[n] = g['call']
    call = callers[n]
    outs = []
    for mod in (kv, kp):
        args = [bytearray(binascii.unhexlify(a)) if isinstance(a, str) else a for a in raw]
        f = getattr(mod, op)
        if mod is kv and op != 'quantize_f32':  # float math allocates (model input only)
            micropython.heap_lock()
            try:
                call(f, args)
            finally:
                micropython.heap_unlock()
        else:
            call(f, args)
        outs.append(binascii.hexlify(args[out]).decode())
    res.append(outs)
print(json.dumps(res))
"""


def _encode(args: list) -> list:
    return [a.hex() if isinstance(a, bytes) else a for a in args]


def run_on_board(board_dir, cases: list[tuple[str, list, int]]) -> list[tuple[bytes, bytes]]:
    (board_dir / "cases.json").write_text(
        json.dumps([[op, _encode(args), out] for op, args, out in cases])
    )
    res = VirtualBoard(board_dir).run(_BOARD_SCRIPT, timeout=120, heap_bytes=4 << 20).check()
    return [(bytes.fromhex(v), bytes.fromhex(p)) for v, p in json.loads(res.stdout)]


@pytest.mark.parametrize("op", OPS)
def test_viper_equals_bytecode_on_board(op, kernel_board, checked_kernels) -> None:
    n = 24 if "conv" in op else 12
    seeds = list(range(1000 * OPS.index(op), 1000 * OPS.index(op) + n))
    cases = [make_case(op, s) for s in seeds]
    results = run_on_board(kernel_board, cases)
    for (name, args, out), (viper, bytecode), seed in zip(cases, results, seeds, strict=True):
        assert viper == bytecode, f"{name} seed {seed}: viper != bytecode"
        emu = [bytearray(a) if isinstance(a, bytes) else a for a in args]
        getattr(checked_kernels, name)(*emu)
        assert bytes(emu[out]) == viper, f"{name} seed {seed}: 32-bit emulation != board"


@pytest.mark.parametrize("op", ["conv_2d", "depthwise_conv_2d"])
def test_group_paths_equal_bytecode_on_board(op, kernel_board, checked_kernels) -> None:
    """The 4-channel group paths with their special cases (3x3 taps held in locals, (k, 1)
    columns, 1x1 runs) on images with interior pixels after border rows: viper == bytecode on
    the board, == the int32-checked emulation in CPython."""
    seeds = list(range(7000, 7150))
    cases = [make_case(op, s, group=True) for s in seeds]
    results = run_on_board(kernel_board, cases)
    for (name, args, out), (viper, bytecode), seed in zip(cases, results, seeds, strict=True):
        assert viper == bytecode, f"{name} group seed {seed}: viper != bytecode"
        emu = [bytearray(a) if isinstance(a, bytes) else a for a in args]
        getattr(checked_kernels, name)(*emu)
        assert bytes(emu[out]) == viper, f"{name} group seed {seed}: 32-bit emulation != board"


@settings(max_examples=15, deadline=None)
@given(op=st.sampled_from(OPS), seed=st.integers(0, 2**31 - 1))
def test_checked_emulation_equals_bytecode(op, seed, checked_kernels, kernels_py_host) -> None:
    """Hypothesis-drawn cases: the viper source under int32 checks == kernels_py in CPython."""
    name, args, out = make_case(op, seed)
    emu = [bytearray(a) if isinstance(a, bytes) else a for a in args]
    ref = [bytearray(a) if isinstance(a, bytes) else a for a in args]
    getattr(checked_kernels, name)(*emu)
    getattr(kernels_py_host, name)(*ref)
    assert emu[out] == ref[out]
