# Sample sources for the simulated sensors. Samples are int16 milli-g (or millivolts), channels
# interleaved: the file format written on the host by edgeloop.link.deploy.write_sim_samples
# (raw little-endian int16, no header). Reads go through one preallocated buffer.
from array import array


class ArraySource:
    """Samples from an array('h') already in memory (tests, or pushed by a host)."""

    def __init__(self, data, channels=3, loop=False):
        self.data = data
        self.channels = channels
        self.loop = loop
        self.pos = 0
        self.count = 0

    def next_into(self, out):
        """Copy the next sample into out[0:channels]; False when the samples ran out."""
        c = self.channels
        if self.pos + c > len(self.data):
            if not self.loop or len(self.data) < c:
                return False
            self.pos = 0
        d = self.data
        p = self.pos
        for i in range(c):
            out[i] = d[p + i]
        self.pos = p + c
        self.count += 1
        return True


class FileSource:
    """Samples streamed from a file in blocks (a long twin run does not fit in the heap)."""

    def __init__(self, path, channels=3, loop=False, block=256):
        self.path = path
        self.channels = channels
        self.loop = loop
        self.f = open(path, "rb")
        self.buf = array("h", bytes(2 * channels * block))
        self.mv = memoryview(self.buf)
        self.n = 0
        self.pos = 0
        self.count = 0

    def _fill(self):
        got = self.f.readinto(self.mv)
        if not got and self.loop:
            self.f.seek(0)
            got = self.f.readinto(self.mv)
        self.n = (got or 0) // 2
        self.pos = 0

    def next_into(self, out):
        c = self.channels
        if self.pos + c > self.n:
            self._fill()
            if self.pos + c > self.n:
                return False
        b = self.buf
        p = self.pos
        for i in range(c):
            out[i] = b[p + i]
        self.pos = p + c
        self.count += 1
        return True

    def close(self):
        self.f.close()
