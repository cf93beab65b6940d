# The board's outbox for QoS 1 messages (alarms, events, OTA results): a ring of fixed-size
# slots allocated once at start, so a broker outage costs no heap and nothing up to `slots`
# messages is lost. A message stays in its slot until the broker's PUBACK for it arrives; after
# a reconnect every unacknowledged one is sent again (DUP set; the host drops the duplicate by
# its seq). When the ring is full a new message is refused and counted in `dropped`, which the
# board reports in its status, so an overflow is never silent.
from array import array


class Outbox:
    def __init__(self, slots=32, slot_size=256):
        self.slots = slots
        self.slot_size = slot_size
        self.buf = bytearray(slots * slot_size)
        self.mv = memoryview(self.buf)
        self.lens = array("H", bytes(2 * slots))
        self.topic = bytearray(slots)  # index into the caller's topic table
        self.pid = array("H", bytes(2 * slots))  # 0: not sent on this connection
        self.head = 0  # oldest message not yet acknowledged
        self.count = 0
        self.dropped = 0  # refused because the ring was full
        self.too_big = 0  # refused because longer than a slot
        self.sent = 0
        self.acked = 0

    def put(self, topic_index, msg):
        """Queue msg (bytes or str); False (and counted) if it cannot be kept."""
        if isinstance(msg, str):
            msg = msg.encode()
        n = len(msg)
        if n > self.slot_size:
            self.too_big += 1
            return False
        if self.count == self.slots:
            self.dropped += 1
            return False
        i = (self.head + self.count) % self.slots
        off = i * self.slot_size
        self.mv[off:off + n] = msg
        self.lens[i] = n
        self.topic[i] = topic_index
        self.pid[i] = 0
        self.count += 1
        return True

    def pending(self):
        """Slot indices not yet sent on this connection, oldest first."""
        for k in range(self.count):
            i = (self.head + k) % self.slots
            if not self.pid[i]:
                yield i

    def message(self, i):
        off = i * self.slot_size
        return self.mv[off:off + self.lens[i]]

    def mark_sent(self, i, pid):
        self.pid[i] = pid
        self.sent += 1

    def ack(self, pid):
        """The broker acknowledged pid: free its slot and every acknowledged one before it."""
        for k in range(self.count):
            i = (self.head + k) % self.slots
            if self.pid[i] == pid:
                self.lens[i] = 0xFFFF  # acknowledged, waits for the ones before it
                self.acked += 1
                break
        while self.count and self.lens[self.head] == 0xFFFF:
            self.pid[self.head] = 0
            self.head = (self.head + 1) % self.slots
            self.count -= 1

    def reconnected(self):
        """A new connection: every message not yet acknowledged is sent again."""
        for k in range(self.count):
            i = (self.head + k) % self.slots
            if self.lens[i] != 0xFFFF:
                self.pid[i] = 0

    def was_sent(self, i):
        return self.pid[i] != 0
