"""Run viper source in CPython as a 32-bit board would, failing on any int32 overflow.

The module source is parsed and every arithmetic result (binary, unary and augmented operations)
is wrapped in a check that raises Int32Overflow when it leaves [-2**31, 2**31). Viper pointers are
emulated over a fake address space, with the 32-bit board's load semantics: ptr8/ptr16 loads are
unsigned, ptr32 loads give the signed word. This catches code that is only right because the
virtual board's viper int is 64 bits wide.
"""

from __future__ import annotations

import ast
import types
from pathlib import Path

from factory.hostimport import stand_in_micropython

LO, HI = -(2**31), 2**31


class Int32Overflow(AssertionError):
    pass


def _chk(v, where: str = ""):
    if isinstance(v, int) and not isinstance(v, bool) and not LO <= v < HI:
        raise Int32Overflow(f"intermediate {v} leaves int32 at {where}")
    return v


class _Memory:
    """Fake address space: each buffer gets a base address below 2**31, as on an ESP32."""

    def __init__(self) -> None:
        self.regions: list[tuple[int, memoryview]] = []
        self.next = 0x3FC8_0000

    def address(self, buf) -> int:
        mv = memoryview(buf).cast("B")
        for base, region in self.regions:
            if region.obj is mv.obj and region.nbytes == mv.nbytes:
                return base
        base = self.next
        self.regions.append((base, mv))
        self.next += (mv.nbytes + 64) & ~15
        return base

    def resolve(self, addr: int) -> tuple[memoryview, int]:
        for base, region in self.regions:
            if base <= addr <= base + region.nbytes:
                return region, addr - base
        raise IndexError(f"address {addr:#x} is in no known buffer")


class _Ptr:
    size = 1
    signed = False

    def __init__(self, mem: _Memory, target) -> None:
        self.mem = mem
        if isinstance(target, int):
            self.addr = target
        elif isinstance(target, _Ptr):
            self.addr = target.addr
        else:
            self.addr = mem.address(target)

    def _loc(self, i: int) -> tuple[memoryview, int]:
        region, off = self.mem.resolve(self.addr)
        off += i * self.size
        if not 0 <= off <= region.nbytes - self.size:
            raise IndexError(f"viper pointer access out of its buffer at byte {off}")
        return region, off

    def __getitem__(self, i: int) -> int:
        region, off = self._loc(i)
        return int.from_bytes(region[off : off + self.size], "little", signed=self.signed)

    def __setitem__(self, i: int, v: int) -> None:
        region, off = self._loc(i)
        region[off : off + self.size] = (v & ((1 << (8 * self.size)) - 1)).to_bytes(
            self.size, "little"
        )


class _Instrument(ast.NodeTransformer):
    def _wrap(self, node: ast.expr) -> ast.expr:
        call = ast.Call(
            func=ast.Name("_chk", ast.Load()),
            args=[node, ast.Constant(f"line {node.lineno}")],
            keywords=[],
        )
        return ast.copy_location(call, node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        return self._wrap(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        self.generic_visit(node)
        return self._wrap(node) if not isinstance(node.op, ast.Not) else node

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.stmt:
        self.generic_visit(node)
        target = node.target
        load = ast.copy_location(ast.parse(ast.unparse(target), mode="eval").body, target)
        value = self._wrap(ast.copy_location(ast.BinOp(load, node.op, node.value), node))
        return ast.copy_location(ast.Assign(targets=[target], value=value), node)


def load_checked(path: Path | str) -> types.ModuleType:
    """Import a viper module's source as an int32-checked CPython module."""
    path = Path(path)
    tree = _Instrument().visit(ast.parse(path.read_text(), filename=str(path)))
    ast.fix_missing_locations(tree)
    mem = _Memory()

    def mk(size: int, signed: bool):
        cls = type(f"ptr{8 * size}", (_Ptr,), {"size": size, "signed": signed})
        return lambda target: cls(mem, target)

    def vint(v=0):
        if isinstance(v, _Ptr):
            return v.addr
        return int(v)

    fake_mp = types.ModuleType("micropython")
    fake_mp.viper = lambda f: f
    fake_mp.native = lambda f: f
    fake_mp.const = lambda v: v
    mod = types.ModuleType(path.stem + "_checked")
    mod.__dict__.update(
        _chk=_chk,
        ptr8=mk(1, False),
        ptr16=mk(2, False),
        ptr32=mk(4, True),
        int=vint,
        uint=vint,
        micropython=fake_mp,
        const=fake_mp.const,
    )
    code = compile(tree, str(path), "exec")
    with stand_in_micropython(fake_mp):
        exec(code, mod.__dict__)
    return mod
