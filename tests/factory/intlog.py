"""An int that logs every integer its arithmetic produces, to find a computation's widest
intermediate (device code must keep within int32, or MicroPython's 31-bit small ints)."""

from __future__ import annotations


class LoggedInt(int):
    """Arithmetic on it returns LoggedInt and appends each int result to LoggedInt.seen."""

    seen: list[int] = []

    def _wrap(self, v):
        if isinstance(v, bool) or not isinstance(v, int):
            return v
        LoggedInt.seen.append(int(v))
        return LoggedInt(v)


def _binop(name: str):
    base = getattr(int, name)

    def op(self, other):
        return self._wrap(base(int(self), int(other)))

    return op


for _n in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__and__",
           "__rand__", "__or__", "__ror__", "__xor__", "__rxor__", "__lshift__", "__rlshift__",
           "__rshift__", "__rrshift__", "__floordiv__", "__rfloordiv__"):
    setattr(LoggedInt, _n, _binop(_n))
LoggedInt.__neg__ = lambda self: self._wrap(-int(self))
LoggedInt.__invert__ = lambda self: self._wrap(~int(self))
