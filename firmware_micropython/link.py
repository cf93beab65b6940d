# Board side of the EdgeLoop link: framed, CRC16-checked binary messages over the serial console.
#
# Frame: A5 5A | type u8 | seq u16 | len u16 | payload[len] | crc16 u16 (CCITT-FALSE over
# type..payload), little-endian. The host side is edgeloop/link/protocol.py; keep both in step.
# Everything is allocated in Link(): recv() and send() allocate nothing per frame (readinto with
# a length, write with offset/length, struct.pack_into, a viper CRC over preallocated buffers).
import sys
import struct
from array import array

import micropython
from micropython import const

PROTOCOL_VERSION = const(1)
SYNC0 = const(0xA5)
SYNC1 = const(0x5A)
HEADER = const(7)
MAX_PAYLOAD = const(2048)

# host -> board
T_SAMPLES = const(0x10)
T_CONTROL = const(0x11)
T_PING = const(0x12)
# board -> host
T_HELLO = const(0x01)
T_RESULT = const(0x20)
T_ACTUATOR = const(0x21)
T_SENSOR_FAULT = const(0x22)
T_LOST = const(0x23)
T_LOG = const(0x24)
T_PONG = const(0x25)

EOF = const(-1)


def _make_table():
    tab = array("H", bytes(512))
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        tab[i] = c & 0xFFFF
    return tab


CRC_TABLE = _make_table()


@micropython.viper
def crc16(buf: ptr8, off: int, n: int, crc: int, tab: ptr16) -> int:
    """CRC-16/CCITT-FALSE of buf[off:off+n], continuing from crc (start with 0xFFFF)."""
    i = off
    end = off + n
    while i < end:
        crc = ((crc << 8) & 0xFFFF) ^ tab[((crc >> 8) ^ buf[i]) & 0xFF]
        i += 1
    return crc


class Link:
    """One framed link over a byte stream pair (stdin/stdout buffers by default)."""

    def __init__(self, rx=None, tx=None, max_payload=MAX_PAYLOAD, max_tx=256):
        if rx is None:
            micropython.kbd_intr(-1)  # 0x03 in binary data must not raise KeyboardInterrupt
            rx = sys.stdin.buffer
        if tx is None:
            tx = sys.stdout.buffer
        self.rx = rx
        self.tx = tx
        self.max_payload = max_payload
        self.hdr = bytearray(5)
        self.one = bytearray(1)
        self.rbuf = bytearray(max_payload + 2)
        # bytes of a bad frame queued for a second scan (see _rescan)
        self.rp = bytearray(max_payload + 2 + 5 + 16)
        self.rp_pos = 0
        self.rp_len = 0
        self.max_tx = max_tx
        self.tbuf = bytearray(HEADER + max_tx + 2)
        self.type = 0
        self.seq = 0
        self.len = 0
        self.tx_seq = 0
        self.frames_ok = 0
        self.bad_crc = 0
        self.garbage = 0
        self.too_long = 0

    def _read(self, buf, n):
        """Fill buf[0:n]: bytes queued for a rescan first, then the stream. False at EOF."""
        k = 0
        rp = self.rp
        while k < n and self.rp_pos < self.rp_len:
            buf[k] = rp[self.rp_pos]
            self.rp_pos += 1
            k += 1
        if k == n:
            return True
        if k == 0:
            return self.rx.readinto(buf, n) == n
        one = self.one  # finishing a partly replayed read: byte by byte (recovery only)
        while k < n:
            if self.rx.readinto(one, 1) != 1:
                return False
            buf[k] = one[0]
            k += 1
        return True

    def _rescan(self, n):
        """A bad frame: queue its bytes after the sync pair (5 header bytes, then n bytes of
        rbuf) to be scanned again, ahead of any bytes still queued, so a real frame starting
        inside them (after garbage, or behind a damaged length) is still found. Oldest bytes
        beyond the queue's capacity are dropped (counted as garbage)."""
        rp = self.rp
        left = self.rp_len - self.rp_pos
        total = 5 + n + left
        d = total - len(rp)
        if d < 0:
            d = 0
        self.garbage += d
        # the still-queued tail (logical bytes 5+n..total) moves to rp[5+n-d..]
        i0 = d - 5 - n
        if i0 < 0:
            i0 = 0
        src = self.rp_pos + i0
        dst = 5 + n + i0 - d
        cnt = left - i0
        if dst > src:
            i = cnt - 1
            while i >= 0:
                rp[dst + i] = rp[src + i]
                i -= 1
        else:
            i = 0
            while i < cnt:
                rp[dst + i] = rp[src + i]
                i += 1
        hdr = self.hdr
        rb = self.rbuf
        k = d
        while k < 5 + n:
            rp[k - d] = hdr[k] if k < 5 else rb[k - 5]
            k += 1
        self.rp_pos = 0
        self.rp_len = total - d

    def recv(self):
        """Block for the next good frame; return its type (payload in rbuf[:len]) or EOF."""
        one = self.one
        hdr = self.hdr
        rbuf = self.rbuf
        while True:
            if not self._read(one, 1):
                return EOF
            if one[0] != SYNC0:
                self.garbage += 1
                continue
            if not self._read(one, 1):
                return EOF
            while one[0] == SYNC0:  # A5 A5 5A: the second A5 may start the frame
                self.garbage += 1
                if not self._read(one, 1):
                    return EOF
            if one[0] != SYNC1:
                self.garbage += 2
                continue
            if not self._read(hdr, 5):
                return EOF
            n = hdr[3] | (hdr[4] << 8)
            if n > self.max_payload:
                self.too_long += 1
                self._rescan(0)
                continue
            if not self._read(rbuf, n + 2):
                return EOF
            crc = crc16(hdr, 0, 5, 0xFFFF, CRC_TABLE)
            crc = crc16(rbuf, 0, n, crc, CRC_TABLE)
            if crc != (rbuf[n] | (rbuf[n + 1] << 8)):
                self.bad_crc += 1
                self._rescan(n + 2)
                continue
            self.type = hdr[0]
            self.seq = hdr[1] | (hdr[2] << 8)
            self.len = n
            self.frames_ok += 1
            return self.type

    def send(self, typ, n):
        """Frame and write the n payload bytes already placed at tbuf[HEADER:]."""
        t = self.tbuf
        seq = self.tx_seq
        t[0] = SYNC0
        t[1] = SYNC1
        t[2] = typ
        t[3] = seq & 0xFF
        t[4] = (seq >> 8) & 0xFF
        t[5] = n & 0xFF
        t[6] = n >> 8
        crc = crc16(t, 2, 5 + n, 0xFFFF, CRC_TABLE)
        t[HEADER + n] = crc & 0xFF
        t[HEADER + n + 1] = crc >> 8
        self.tx.write(t, 0, HEADER + 2 + n)
        self.tx_seq = (seq + 1) & 0xFFFF

    # ---- message writers (layouts mirror edgeloop/link/protocol.py) ----

    def hello(self, window, stride, channels, n_out, heap_free, name):
        """Boot banner as a frame: lets the host detect a (re)start of the board."""
        t = self.tbuf
        struct.pack_into("<HHHBBI", t, HEADER, PROTOCOL_VERSION, window, stride, channels,
                         n_out, heap_free)
        n = 12 + self._put(12, name)
        self.tx_seq = 0
        self.send(T_HELLO, n)

    def result(self, window_id, cls, decision, flags, out, n_out, latency_us, heap_free):
        """One window's outcome; out holds the model's int8 output bytes (n_out of them)."""
        t = self.tbuf
        struct.pack_into("<IBBBBII", t, HEADER, window_id, cls, decision, flags, n_out,
                         latency_us, heap_free)
        i = 0
        while i < n_out:
            t[HEADER + 16 + i] = out[i] & 0xFF
            i += 1
        self.send(T_RESULT, 16 + n_out)

    def actuator(self, window_id, command, action=0, level=1):
        # command 1 stop, 2 alert, 3 output (action index, level), 4 actuator fault
        struct.pack_into("<IBBB", self.tbuf, HEADER, window_id, command, action, level)
        self.send(T_ACTUATOR, 7)

    def sensor_fault(self, window_id, kind, channel, count):
        struct.pack_into("<IBBH", self.tbuf, HEADER, window_id, kind, channel, count)
        self.send(T_SENSOR_FAULT, 8)

    def lost(self, first_window, count, reason):
        struct.pack_into("<IIB", self.tbuf, HEADER, first_window, count, reason)
        self.send(T_LOST, 9)

    def log(self, text):
        """A text log line as a frame (not for the per-window path: str encoding allocates)."""
        self.send(T_LOG, self._put(0, text))

    def _put(self, off, text):
        if isinstance(text, str):
            text = text.encode()
        n = min(len(text), self.max_tx - off)
        t = self.tbuf
        for i in range(n):
            t[HEADER + off + i] = text[i]
        return n

    def pong(self, token, windows_done, samples_seen):
        struct.pack_into("<IIIIIII", self.tbuf, HEADER, token, self.frames_ok, self.bad_crc,
                         self.garbage, self.too_long, windows_done, samples_seen)
        self.send(T_PONG, 28)
