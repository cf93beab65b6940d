"""Machine-code bytes of the viper kernel modules, as a board would take them at import.

On an ESP32, importing a .mpy copies each native (viper) function's code into executable IRAM
(ports/esp32 esp_native_code_commit, heap_caps_malloc(MALLOC_CAP_EXEC)), and the classic ESP32
has little of it free. This reads the raw-code tree of an mpy v6 file (the layout of
MicroPython's tools/mpy-tool.py read_mpy) and sums the function bodies of native raw codes, so
each op family's and each model's IRAM cost is known before a board is flashed.

    python -m benchmarks.codesize            (table per kernel module, xtensawin)
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from converters.registry import OP_FAMILY

ROOT = Path(__file__).resolve().parents[1]
ELRT = ROOT / "firmware_micropython" / "elrt"


_MP_CODE_BYTECODE = 2
_MP_CODE_NATIVE_PY = 3
_MP_CODE_NATIVE_VIPER = 4
_SCOPE_VIPERRELOC = 0x10
_SCOPE_VIPERRODATA = 0x20
_SCOPE_VIPERBSS = 0x40
_OBJ_FUN_TABLE, _OBJ_NONE, _OBJ_FALSE, _OBJ_TRUE, _OBJ_ELLIPSIS = 0, 1, 2, 3, 4
_OBJ_STR, _OBJ_BYTES, _OBJ_TUPLE = 5, 6, 10


class MpyFormatError(ValueError):
    """The file is not an mpy v6 file this reader understands."""


@dataclass(frozen=True)
class MpyCode:
    """Sizes of one .mpy: the file, native code bodies (IRAM on a board), viper rodata."""

    file_bytes: int
    native_code_bytes: int
    native_functions: int
    rodata_bytes: int


class _Reader:
    def __init__(self, data: bytes, name: str) -> None:
        self.data = data
        self.pos = 0
        self.name = name

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise MpyFormatError(f"{self.name}: truncated at byte {self.pos}")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def uint(self) -> int:
        v = 0
        while True:
            b = self.byte()
            v = (v << 7) | (b & 0x7F)
            if not b & 0x80:
                return v

    def skip(self, n: int) -> None:
        if self.pos + n > len(self.data):
            raise MpyFormatError(f"{self.name}: truncated at byte {self.pos}")
        self.pos += n


def _skip_obj(r: _Reader) -> None:
    kind = r.byte()
    if kind in (_OBJ_FUN_TABLE, _OBJ_NONE, _OBJ_FALSE, _OBJ_TRUE, _OBJ_ELLIPSIS):
        return
    if kind == _OBJ_TUPLE:
        for _ in range(r.uint()):
            _skip_obj(r)
        return
    r.skip(r.uint())
    if kind in (_OBJ_STR, _OBJ_BYTES):
        r.skip(1)  # NUL


def _raw_code(r: _Reader, acc: list[int]) -> None:
    kind_len = r.uint()
    kind = (kind_len & 3) + _MP_CODE_BYTECODE
    has_children = (kind_len >> 2) & 1
    n = kind_len >> 3
    r.skip(n)
    if kind != _MP_CODE_BYTECODE:
        acc[0] += n
        acc[1] += 1
        if kind == _MP_CODE_NATIVE_PY:
            r.uint()  # prelude offset
        else:
            flags = r.uint()
            if kind == _MP_CODE_NATIVE_VIPER:
                rodata = r.uint() if flags & _SCOPE_VIPERRODATA else 0
                if flags & _SCOPE_VIPERBSS:
                    r.uint()
                r.skip(rodata)
                acc[2] += rodata
                if flags & _SCOPE_VIPERRELOC:
                    while (op := r.byte()) != 0xFF:
                        if op & 1:
                            r.uint()
                        op >>= 1
                        if op <= 5 and op & 1:
                            r.uint()
            else:  # inline assembler
                r.uint()
                r.uint()
    if has_children:
        for _ in range(r.uint()):
            _raw_code(r, acc)


def mpy_code(data: bytes, name: str = "<mpy>") -> MpyCode:
    """Native code bytes of an mpy v6 file (every native raw code's body; the module's own
    top-level bytecode is not native)."""
    if len(data) < 4 or data[0] != ord("M") or data[1] != 6:
        raise MpyFormatError(f"{name}: not an mpy v6 file (header {data[:4]!r})")
    r = _Reader(data, name)
    r.skip(4)
    n_qstr = r.uint()
    n_obj = r.uint()
    for _ in range(n_qstr):
        ln = r.uint()
        if not ln & 1:
            r.skip((ln >> 1) + 1)
    for _ in range(n_obj):
        _skip_obj(r)
    acc = [0, 0, 0]
    _raw_code(r, acc)
    if r.pos != len(data):
        raise MpyFormatError(f"{name}: {len(data) - r.pos} bytes left after the raw code tree")
    return MpyCode(len(data), acc[0], acc[1], acc[2])


def compile_module(src: Path, arch: str) -> bytes:
    """src compiled by mpy-cross for arch (the same tool and flags the firmware build uses)."""
    from edgeloop.firmware import compile_file

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{src.stem}.mpy"
        compile_file(src, out, arch)
        return out.read_bytes()


def kernel_modules() -> list[Path]:
    """The viper kernel modules, one per op family (elrt/kv_*.py)."""
    return sorted(ELRT.glob("kv_*.py"))


def family_code(arch: str = "xtensawin") -> dict[str, MpyCode]:
    """{family: MpyCode} of every viper kernel module compiled for arch."""
    return {
        p.stem[3:]: mpy_code(compile_module(p, arch), p.name) for p in kernel_modules()
    }


def bundle_families(bundle: bytes) -> set[str]:
    """The kernel families a bundle's ops need (what elrt imports at load)."""
    from converters.bundle import parse_bundle

    ops = parse_bundle(bundle).ops
    return {OP_FAMILY[op.opcode] for op in ops}


def model_code_bytes(bundle: bytes, families: dict[str, MpyCode]) -> int:
    """Native code bytes elrt imports to run a bundle on the viper set."""
    return sum(families[f].native_code_bytes for f in bundle_families(bundle))


def main() -> int:
    rows = family_code("xtensawin")
    print(f"{'module':<14}{'.mpy bytes':>12}{'native code':>13}{'functions':>11}")
    for fam, c in rows.items():
        print(f"kv_{fam:<11}{c.file_bytes:>12}{c.native_code_bytes:>13}{c.native_functions:>11}")
    total = sum(c.native_code_bytes for c in rows.values())
    print(f"{'all':<14}{sum(c.file_bytes for c in rows.values()):>12}{total:>13}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
