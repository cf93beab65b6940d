# A small MQTT 3.1.1 client for the board: CONNECT with a last will, PUBLISH at QoS 0/1 without
# waiting for the PUBACK, SUBSCRIBE, PINGREQ, and a non-blocking poll that delivers PUBLISHes
# from a buffer allocated once.
#
# Why not micropython-lib's umqtt.simple: its QoS 1 publish blocks until its PUBACK arrives (one
# message in flight, the sampling loop stalled for a round trip per alarm, forever if the broker
# dies mid-wait), it allocates a new bytes object per received message, and the only copy on a
# registry this project installs from (PyPI's micropython-umqtt.simple 1.3.4, 2017) predates its
# socket-timeout fixes. The outbox (net/outbox.py) needs many QoS 1 messages in flight, acked by
# packet id, and resent with DUP after a reconnect; this client gives exactly that.
import select
import socket
import struct

try:
    from time import ticks_ms, ticks_diff
except ImportError:  # pragma: no cover
    from time import time as _t

    def ticks_ms():
        return int(_t() * 1000)

    def ticks_diff(a, b):
        return a - b


class MQTTError(OSError):
    pass


_CONNACK_REASONS = {1: "protocol version refused", 2: "client id refused", 3: "server unavailable",
                    4: "bad user name or password", 5: "not authorised"}


def _str(s):
    b = s.encode() if isinstance(s, str) else bytes(s)
    return struct.pack("!H", len(b)) + b


def _varlen(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


class MQTTClient:
    def __init__(self, client_id, server, port=1883, user=None, password=None, keepalive=30,
                 ssl_context=None, rx_size=2048, timeout=5):
        self.client_id = client_id
        self.server = server
        self.port = port
        self.user = user
        self.password = password
        self.keepalive = keepalive
        self.ssl_context = ssl_context
        self.timeout = timeout
        self.sock = None
        self.poller = None
        self.rx = bytearray(rx_size)  # incoming PUBLISH topic+payload; larger ones are skipped
        self.rxmv = memoryview(self.rx)
        self.hdr = bytearray(5)
        self.hdr1 = memoryview(self.hdr)[1:]
        self.pid = 0
        self.lw = None
        self.on_message = None  # f(topic_bytes_mv, payload_mv)
        self.on_puback = None  # f(pid)
        self.last_tx = 0
        self.last_rx = 0
        self.skipped = 0  # incoming messages too large for rx

    def set_last_will(self, topic, msg, retain=False, qos=0):
        self.lw = (topic, msg, retain, qos)

    def next_pid(self):
        self.pid = self.pid + 1 if self.pid < 65535 else 1
        return self.pid

    # -- connection -------------------------------------------------------------------------
    def connect(self, clean_session=True):
        addr = socket.getaddrinfo(self.server, self.port)[0][-1]
        s = socket.socket()
        s.settimeout(self.timeout)
        try:
            s.connect(addr)
            if self.ssl_context is not None:
                s = self.ssl_context.wrap_socket(s, server_hostname=self.server)
        except OSError:
            s.close()
            raise
        except ValueError as e:  # the TLS handshake: e.g. a certificate the CA did not sign
            s.close()
            raise OSError("TLS: %s" % e)
        self.sock = s
        flags = 0x02 if clean_session else 0
        body = _str("MQTT") + bytes((4,))
        payload = _str(self.client_id)
        if self.lw:
            t, m, r, q = self.lw
            flags |= 0x04 | (q << 3) | (0x20 if r else 0)
            payload += _str(t) + _str(m)
        if self.user is not None:
            flags |= 0x80
            payload += _str(self.user)
            if self.password is not None:
                flags |= 0x40
                payload += _str(self.password)
        body += bytes((flags,)) + struct.pack("!H", self.keepalive) + payload
        self._send(0x10, body)
        resp = self._read_exact(4)
        if resp[0] != 0x20 or resp[1] != 2:
            self.close()
            raise MQTTError("broker sent no CONNACK")
        if resp[3]:
            self.close()
            raise MQTTError("connection refused: %s" % _CONNACK_REASONS.get(resp[3], resp[3]))
        self.poller = select.poll()
        self.poller.register(self.sock, select.POLLIN)
        self.last_rx = ticks_ms()
        return resp[2] & 1  # session present

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.poller = None

    def disconnect(self):
        if self.sock is not None:
            try:
                self.sock.write(b"\xe0\x00")
            except OSError:
                pass
        self.close()

    @property
    def connected(self):
        return self.sock is not None

    # -- sending ----------------------------------------------------------------------------
    def _send(self, first, body, payload=None):
        if self.sock is None:
            raise MQTTError("not connected")
        n = len(body) + (len(payload) if payload is not None else 0)
        try:
            self.sock.write(bytes((first,)) + _varlen(n) + body)
            if payload is not None:
                self.sock.write(payload)
        except OSError:
            self.close()
            raise
        self.last_tx = ticks_ms()

    def publish(self, topic, msg, qos=0, retain=False, pid=None, dup=False):
        """Send a PUBLISH; returns its packet id (QoS 1) without waiting for the PUBACK."""
        first = 0x30 | (qos << 1) | (1 if retain else 0) | (0x08 if dup and qos else 0)
        body = _str(topic)
        if qos:
            if pid is None:
                pid = self.next_pid()
            body += struct.pack("!H", pid)
        self._send(first, body, msg)
        return pid

    def subscribe(self, topic, qos=0):
        pid = self.next_pid()
        self._send(0x82, struct.pack("!H", pid) + _str(topic) + bytes((qos,)))
        t0 = ticks_ms()
        while ticks_diff(ticks_ms(), t0) < self.timeout * 1000:
            if self.poll(100) == 0x90:
                return
        raise MQTTError("no SUBACK for %s" % topic)

    def ping(self):
        self._send(0xC0, b"")

    # -- receiving --------------------------------------------------------------------------
    def _read_exact(self, n, into=None):
        """Read exactly n bytes into `into` (a bytearray or memoryview, from its start)."""
        buf = into if into is not None else bytearray(n)
        mv = buf if isinstance(buf, memoryview) else memoryview(buf)
        got = 0
        while got < n:
            try:
                k = self.sock.readinto(mv[got:n])
            except OSError:
                self.close()
                raise
            if not k:
                self.close()
                raise MQTTError("connection closed by broker")
            got += k
        return buf

    def poll(self, timeout_ms=0):
        """Handle at most one incoming packet, waiting up to timeout_ms for it; returns its type
        byte (masked) or 0. Sends a PINGREQ when the link has been quiet for keepalive/2."""
        if self.sock is None:
            raise MQTTError("not connected")
        now = ticks_ms()
        if self.keepalive and ticks_diff(now, self.last_tx) > self.keepalive * 500:
            self.ping()
        if self.keepalive and ticks_diff(now, self.last_rx) > self.keepalive * 1500:
            self.close()
            raise MQTTError("broker silent for 1.5 keepalives")
        if not self.poller.poll(timeout_ms):
            return 0
        h = self.hdr
        self._read_exact(1, h)
        kind = h[0] & 0xF0
        n = 0
        shift = 0
        while True:
            self._read_exact(1, self.hdr1)
            n |= (h[1] & 0x7F) << shift
            shift += 7
            if not h[1] & 0x80:
                break
        self.last_rx = ticks_ms()
        if kind == 0x30:
            qos = (h[0] >> 1) & 3
            if n > len(self.rx):
                self._skip(n)
                self.skipped += 1
                return kind
            mv = self.rxmv
            self._read_exact(n, mv)
            tlen = (mv[0] << 8) | mv[1]
            topic = mv[2:2 + tlen]
            off = 2 + tlen
            if qos:
                pid = (mv[off] << 8) | mv[off + 1]
                off += 2
                self._send(0x40, struct.pack("!H", pid))
            if self.on_message:
                self.on_message(topic, mv[off:n])
        elif kind == 0x40:
            if n != 2:
                self._skip(n)
                return kind
            self._read_exact(2, h)
            if self.on_puback:
                self.on_puback((h[0] << 8) | h[1])
        else:
            self._skip(n)
        return kind

    def _skip(self, n):
        b = self.hdr
        while n:
            k = min(n, len(b))
            self._read_exact(k, b)
            n -= k
