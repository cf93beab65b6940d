"""Host side of the EdgeLoop link protocol (board side: firmware_micropython/link.py).

Frame layout, little-endian::

    A5 5A | type u8 | seq u16 | len u16 | payload[len] | crc16 u16

crc16 is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over type, seq, len and payload, i.e.
``binascii.crc_hqx(frame[2:-2], 0xFFFF)``. Anything between frames is console text (a boot
banner, a traceback, print output); the decoder hands it back as Text so nothing is hidden.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from edgeloop.errors import EdgeLoopError

PROTOCOL_VERSION = 1
SYNC = b"\xa5\x5a"
HEADER = struct.Struct("<2sBHH")
HEADER_SIZE = HEADER.size  # 7
CRC_SIZE = 2
MAX_PAYLOAD = 2048


class ProtocolError(EdgeLoopError):
    """A frame or payload that does not follow the protocol (names the message and field)."""


class MsgType(IntEnum):
    HELLO = 0x01
    SAMPLES = 0x10
    CONTROL = 0x11
    PING = 0x12
    RESULT = 0x20
    ACTUATOR = 0x21
    SENSOR_FAULT = 0x22
    LOST = 0x23
    LOG = 0x24
    PONG = 0x25


class Control(IntEnum):
    """Host -> board CONTROL opcodes."""

    REARM = 1  # the machine was restarted: clear the decision state
    QUIT = 2  # leave HIL mode
    RESTART = 3  # a new sample stream starts at index 0 (decision cleared)


class Actuator(IntEnum):
    RUN = 0
    STOP = 1


class SensorFaultKind(IntEnum):
    NAN = 1
    DROPOUT = 2
    STUCK = 3
    SPIKE = 4


class LostReason(IntEnum):
    SAMPLE_GAP = 1  # a samples frame never arrived: windows spanning the gap are not computed
    BAD_INPUT = 2  # samples frame the board could not use (wrong channels/dtype)
    # host-side reasons (never sent by the board)
    NO_RESULT = 100  # the link went quiet / the session ended without this window's result
    BOARD_RESET = 101  # the board restarted before answering


class DType(IntEnum):
    INT16 = 0
    FLOAT32 = 1


def crc16(data: bytes | bytearray | memoryview) -> int:
    return binascii.crc_hqx(data, 0xFFFF)


def encode_frame(msg_type: int, seq: int, payload: bytes = b"") -> bytes:
    """One complete frame; refuses payloads the board could not buffer."""
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(f"payload of {len(payload)} bytes exceeds MAX_PAYLOAD={MAX_PAYLOAD}")
    if not 0 <= msg_type <= 0xFF:
        raise ProtocolError(f"frame type {msg_type} does not fit in a byte")
    head = HEADER.pack(SYNC, msg_type, seq & 0xFFFF, len(payload))
    crc = crc16(head[2:] + payload)
    return head + payload + struct.pack("<H", crc)


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    payload: bytes


@dataclass(frozen=True)
class Text:
    """Bytes seen outside any valid frame (console output, or garbage on the line)."""

    data: bytes


@dataclass(frozen=True)
class Corrupt:
    """A frame header was found but the frame is unusable; its bytes are rescanned."""

    reason: str  # "crc" | "length" | "truncated"
    type: int
    seq: int
    length: int


Event = Frame | Text | Corrupt


@dataclass
class FrameDecoder:
    """Incremental frame decoder that resynchronises after garbage, bit flips and truncation.

    A bad frame costs only its first byte: scanning restarts right after it, so a frame that
    follows a truncated one is still found.
    """

    max_payload: int = MAX_PAYLOAD
    buf: bytearray = field(default_factory=bytearray)
    frames: int = 0
    corrupt: int = 0
    text_bytes: int = 0

    def feed(self, data: bytes) -> list[Event]:
        self.buf += data
        return self._scan(final=False)

    def flush(self) -> list[Event]:
        """End of stream: whatever is left is a truncated frame or text."""
        return self._scan(final=True)

    def _scan(self, final: bool) -> list[Event]:
        events: list[Event] = []
        buf = self.buf
        pos = 0
        text_start = 0

        def emit_text(end: int) -> None:
            if end > text_start:
                events.append(Text(bytes(buf[text_start:end])))
                self.text_bytes += end - text_start

        while True:
            i = buf.find(SYNC, pos)
            if i < 0:
                # keep a trailing A5 that may be the first half of a sync
                keep = not final and len(buf) > pos and buf.endswith(SYNC[:1])
                end = len(buf) - 1 if keep else len(buf)
                emit_text(end)
                pos = text_start = end
                break
            if len(buf) - i < HEADER_SIZE:
                if final:
                    pos = i + 1
                    continue
                emit_text(i)
                pos = text_start = i
                break
            _, typ, seq, length = HEADER.unpack_from(buf, i)
            if length > self.max_payload:
                self.corrupt += 1
                events.append(Corrupt("length", typ, seq, length))
                pos = i + 1
                continue
            end = i + HEADER_SIZE + length + CRC_SIZE
            if end > len(buf):
                if final:
                    self.corrupt += 1
                    events.append(Corrupt("truncated", typ, seq, length))
                    pos = i + 1
                    continue
                emit_text(i)
                pos = text_start = i
                break
            (got,) = struct.unpack_from("<H", buf, end - CRC_SIZE)
            if crc16(memoryview(buf)[i + 2 : end - CRC_SIZE]) != got:
                self.corrupt += 1
                events.append(Corrupt("crc", typ, seq, length))
                pos = i + 1
                continue
            emit_text(i)
            events.append(Frame(typ, seq, bytes(buf[i + HEADER_SIZE : end - CRC_SIZE])))
            self.frames += 1
            pos = text_start = end
        del buf[:pos]
        return _merge_text(events)


def _merge_text(events: list[Event]) -> list[Event]:
    out: list[Event] = []
    for ev in events:
        if isinstance(ev, Text) and out and isinstance(out[-1], Text):
            out[-1] = Text(out[-1].data + ev.data)
        else:
            out.append(ev)
    return out


# ---------------------------------------------------------------- payloads


def _need(payload: bytes, n: int, what: str) -> None:
    if len(payload) < n:
        raise ProtocolError(f"{what} payload has {len(payload)} bytes, needs at least {n}")


@dataclass(frozen=True)
class Hello:
    version: int
    window: int
    stride: int
    channels: int
    n_out: int
    heap_free: int
    name: str

    _S = struct.Struct("<HHHBBI")

    @classmethod
    def unpack(cls, p: bytes) -> Hello:
        _need(p, cls._S.size, "HELLO")
        fields = cls._S.unpack_from(p)
        return cls(*fields, p[cls._S.size :].decode("ascii", "replace"))

    def pack(self) -> bytes:
        f = (self.version, self.window, self.stride, self.channels, self.n_out, self.heap_free)
        return self._S.pack(*f) + self.name.encode()


@dataclass(frozen=True)
class Result:
    window: int
    cls: int
    decision: int
    flags: int
    latency_us: int
    heap_free: int
    outputs: np.ndarray  # int8 model output (empty when the window was skipped)

    _S = struct.Struct("<IBBBBII")
    FLAG_SENSOR_FAULT = 1

    @property
    def skipped(self) -> bool:
        return bool(self.flags & self.FLAG_SENSOR_FAULT)

    @classmethod
    def unpack(cls, p: bytes) -> Result:
        _need(p, cls._S.size, "RESULT")
        win, c, dec, flags, n, lat, heap = cls._S.unpack_from(p)
        _need(p, cls._S.size + n, "RESULT")
        out = np.frombuffer(p, dtype=np.int8, count=n, offset=cls._S.size).copy()
        return cls(win, c, dec, flags, lat, heap, out)

    def pack(self) -> bytes:
        out = np.asarray(self.outputs, dtype=np.int8)
        head = self._S.pack(self.window, self.cls, self.decision, self.flags, out.size,
                            self.latency_us, self.heap_free)
        return head + out.tobytes()


@dataclass(frozen=True)
class ActuatorCmd:
    window: int
    command: int

    _S = struct.Struct("<IB")

    @classmethod
    def unpack(cls, p: bytes) -> ActuatorCmd:
        _need(p, cls._S.size, "ACTUATOR")
        return cls(*cls._S.unpack_from(p))

    def pack(self) -> bytes:
        return self._S.pack(self.window, self.command)


@dataclass(frozen=True)
class SensorFault:
    window: int
    kind: int
    channel: int
    count: int

    _S = struct.Struct("<IBBH")

    @property
    def kind_name(self) -> str:
        try:
            return SensorFaultKind(self.kind).name.lower()
        except ValueError:
            return f"kind{self.kind}"

    @classmethod
    def unpack(cls, p: bytes) -> SensorFault:
        _need(p, cls._S.size, "SENSOR_FAULT")
        return cls(*cls._S.unpack_from(p))

    def pack(self) -> bytes:
        return self._S.pack(self.window, self.kind, self.channel, self.count)


@dataclass(frozen=True)
class Lost:
    first_window: int
    count: int
    reason: int

    _S = struct.Struct("<IIB")

    @classmethod
    def unpack(cls, p: bytes) -> Lost:
        _need(p, cls._S.size, "LOST")
        return cls(*cls._S.unpack_from(p))

    def pack(self) -> bytes:
        return self._S.pack(self.first_window, self.count, self.reason)


@dataclass(frozen=True)
class Pong:
    token: int
    frames_ok: int
    bad_crc: int
    garbage: int
    too_long: int
    windows_done: int
    samples_seen: int

    _S = struct.Struct("<7I")

    @classmethod
    def unpack(cls, p: bytes) -> Pong:
        _need(p, cls._S.size, "PONG")
        return cls(*cls._S.unpack_from(p))


SAMPLES_HEAD = struct.Struct("<IHBB")  # first sample index, n samples, channels, dtype


def samples_payload(first_index: int, samples: np.ndarray, dtype: DType) -> bytes:
    """A batch of interleaved samples (n, channels) as int16 counts or float32 values."""
    arr = np.asarray(samples)
    if arr.ndim != 2:
        raise ProtocolError(f"samples must be (n, channels), got shape {arr.shape}")
    n, ch = arr.shape
    data = arr.astype("<i2" if dtype == DType.INT16 else "<f4").tobytes()
    payload = SAMPLES_HEAD.pack(first_index & 0xFFFFFFFF, n, ch, int(dtype)) + data
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(
            f"{n} samples x {ch} channels of {dtype.name} need {len(payload)} bytes; "
            f"batch at most {max_batch(ch, dtype)} samples per frame"
        )
    return payload


def max_batch(channels: int, dtype: DType) -> int:
    width = 2 if dtype == DType.INT16 else 4
    return (MAX_PAYLOAD - SAMPLES_HEAD.size) // (channels * width)


def unpack_samples(p: bytes) -> tuple[int, np.ndarray, DType]:
    _need(p, SAMPLES_HEAD.size, "SAMPLES")
    first, n, ch, dt = SAMPLES_HEAD.unpack_from(p)
    dtype = DType(dt)
    np_dtype = "<i2" if dtype == DType.INT16 else "<f4"
    arr = np.frombuffer(p, dtype=np_dtype, count=n * ch, offset=SAMPLES_HEAD.size)
    return first, arr.reshape(n, ch), dtype


def decode_message(frame: Frame) -> object:
    """Typed payload of a board->host frame (raw bytes for LOG, ProtocolError if unknown)."""
    t = frame.type
    p = frame.payload
    if t == MsgType.HELLO:
        return Hello.unpack(p)
    if t == MsgType.RESULT:
        return Result.unpack(p)
    if t == MsgType.ACTUATOR:
        return ActuatorCmd.unpack(p)
    if t == MsgType.SENSOR_FAULT:
        return SensorFault.unpack(p)
    if t == MsgType.LOST:
        return Lost.unpack(p)
    if t == MsgType.PONG:
        return Pong.unpack(p)
    if t == MsgType.LOG:
        return p.decode("utf-8", "replace")
    raise ProtocolError(f"unexpected frame type 0x{t:02x} from the board (seq {frame.seq})")


# The board keeps sample indices and window ids modulo 2**30 (firmware_micropython/hil.py: an
# ESP32's small ints are 31-bit); the host counts them in full and unwraps what comes back.
BOARD_INDEX_MOD = 1 << 30


def unwrap_index(value: int, near: int) -> int:
    """The index congruent to the board's `value` modulo 2**30 that is closest to `near`."""
    d = (int(value) - int(near)) % BOARD_INDEX_MOD
    if d >= BOARD_INDEX_MOD // 2:
        d -= BOARD_INDEX_MOD
    return int(near) + d


def unwrap_message(msg: object, window_near: int, sample_near: int) -> object:
    """A decoded board message with its window id / sample count unwrapped (identity below
    2**30, which is every stream shorter than ~12 days at 1 kHz)."""
    from dataclasses import replace

    if isinstance(msg, Result | ActuatorCmd | SensorFault):
        return replace(msg, window=unwrap_index(msg.window, window_near))
    if isinstance(msg, Lost):
        return replace(msg, first_window=unwrap_index(msg.first_window, window_near))
    if isinstance(msg, Pong):
        return replace(msg, samples_seen=unwrap_index(msg.samples_seen, sample_near),
                       windows_done=unwrap_index(msg.windows_done, window_near))
    return msg
