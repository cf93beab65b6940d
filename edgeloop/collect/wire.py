"""The collect frames, host side (board side: firmware_micropython/collect.py; keep both in step).

They ride on the HIL link's framing (edgeloop.link.protocol: sync, type, seq, length, CRC16),
with their own frame types. Sequence numbers and board ticks travel modulo 2**30 (an ESP32's
small ints); `Unwrap` turns them back into counts that only grow.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from edgeloop.link import protocol as P

VERSION = 1
MOD = 1 << 30


class CollectMsg(IntEnum):
    INFO = 0x30
    DATA = 0x31
    BURST_END = 0x32
    REFUSED = 0x33


class Op(IntEnum):
    """CONTROL opcodes the collect script understands (QUIT as in the HIL agent)."""

    QUIT = 2
    STREAM = 4
    CAPTURE = 5
    RESEND = 6
    DONE = 7
    STOP = 8


F_BURST = 1


@dataclass(frozen=True)
class Info:
    """What the board samples: channels, its sample period (us = num/den), heap, FIFO."""

    version: int
    channels: int
    flags: int
    period_num: int
    period_den: int
    heap_free: int
    fifo: int
    batch: int
    sensor: str

    _S = struct.Struct("<HBBIIIHH")

    @property
    def replay(self) -> bool:
        """The virtual board's replay clock: samples as fast as drained, no rate to measure."""
        return bool(self.flags & 1)

    @property
    def rate_hz(self) -> float:
        """The rate the driver set the sensor's clock to (nominal: the board's clock measures)."""
        return 1e6 * self.period_den / self.period_num

    @classmethod
    def unpack(cls, p: bytes) -> Info:
        if len(p) < cls._S.size:
            raise P.ProtocolError(f"INFO payload has {len(p)} bytes, needs {cls._S.size}")
        f = cls._S.unpack_from(p)
        return cls(*f, p[cls._S.size:].decode("ascii", "replace"))

    def pack(self) -> bytes:
        return self._S.pack(self.version, self.channels, self.flags, self.period_num,
                            self.period_den, self.heap_free, self.fifo, self.batch) + \
            self.sensor.encode()


DATA_HEAD = struct.Struct("<IHBBII")


@dataclass(frozen=True)
class Data:
    """n samples from sequence number `first`; at board time clock_t, clock_seq were taken."""

    first: int
    samples: np.ndarray  # (n, channels) int16
    flags: int
    clock_seq: int
    clock_t: int

    @property
    def burst(self) -> bool:
        return bool(self.flags & F_BURST)

    @classmethod
    def unpack(cls, p: bytes) -> Data:
        if len(p) < DATA_HEAD.size:
            raise P.ProtocolError(f"DATA payload has {len(p)} bytes, needs {DATA_HEAD.size}")
        first, n, ch, flags, cseq, ct = DATA_HEAD.unpack_from(p)
        if len(p) != DATA_HEAD.size + 2 * n * ch or ch == 0:
            raise P.ProtocolError(f"DATA frame says {n} samples x {ch} channels but carries "
                                  f"{len(p) - DATA_HEAD.size} bytes")
        arr = np.frombuffer(p, "<i2", n * ch, DATA_HEAD.size).reshape(n, ch).astype(np.int16)
        return cls(first & (MOD - 1), arr, flags, cseq & (MOD - 1), ct & (MOD - 1))

    def pack(self) -> bytes:
        n, ch = self.samples.shape
        return DATA_HEAD.pack(self.first, n, ch, self.flags, self.clock_seq, self.clock_t) + \
            np.asarray(self.samples, "<i2").tobytes()


@dataclass(frozen=True)
class BurstEnd:
    """A burst's end: samples captured, lost while capturing, and two clock points."""

    n: int
    lost: int
    k1: int
    t1: int
    k2: int
    t2: int

    _S = struct.Struct("<6I")

    @classmethod
    def unpack(cls, p: bytes) -> BurstEnd:
        if len(p) < cls._S.size:
            raise P.ProtocolError(f"BURST_END payload has {len(p)} bytes, needs {cls._S.size}")
        return cls(*cls._S.unpack_from(p))

    def pack(self) -> bytes:
        return self._S.pack(self.n, self.lost, self.k1, self.t1, self.k2, self.t2)


@dataclass(frozen=True)
class Refused:
    code: int  # 1: not enough memory (value: the bytes it has), 3: simulated samples ran out
    value: int
    text: str

    _S = struct.Struct("<BI")

    @classmethod
    def unpack(cls, p: bytes) -> Refused:
        if len(p) < cls._S.size:
            raise P.ProtocolError(f"REFUSED payload has {len(p)} bytes, needs {cls._S.size}")
        code, value = cls._S.unpack_from(p)
        return cls(code, value, p[cls._S.size:].decode("utf-8", "replace"))


def decode(frame: P.Frame) -> object:
    """The typed message of a collect frame (LOG frames as text); ProtocolError otherwise."""
    t, p = frame.type, frame.payload
    if t == CollectMsg.DATA:
        return Data.unpack(p)
    if t == CollectMsg.INFO:
        return Info.unpack(p)
    if t == CollectMsg.BURST_END:
        return BurstEnd.unpack(p)
    if t == CollectMsg.REFUSED:
        return Refused.unpack(p)
    if t == P.MsgType.LOG:
        return p.decode("utf-8", "replace")
    raise P.ProtocolError(f"unexpected frame type 0x{t:02x} from the collect script")


def control(op: Op, *args: int) -> bytes:
    """A CONTROL payload: the op and its u32 arguments."""
    return bytes([int(op)]) + b"".join(struct.pack("<I", a & 0xFFFFFFFF) for a in args)


class Unwrap:
    """A counter that travels modulo 2**30, unwrapped into one that only grows."""

    def __init__(self) -> None:
        self.value: int | None = None

    def peek(self, v: int) -> int:
        """The unwrapped value nearest the last one, without moving the reference."""
        if self.value is None:
            return int(v)
        d = (int(v) - self.value) % MOD
        return self.value + (d - MOD if d >= MOD // 2 else d)

    def __call__(self, v: int) -> int:
        self.value = self.peek(v)
        return self.value
