# A fake machine.I2C: devices answer at their addresses; errors as the real port raises them.
from micropython import const

ENODEV = const(19)
ETIMEDOUT = const(110)


class I2C:
    def __init__(self, devices=None):
        self.devices = {}
        for dev in devices or ():
            self.attach(dev)
        self.fail_reads = 0  # next N reads raise ETIMEDOUT (a loose wire), for fault tests
        self.fail_every = 0  # or: every Nth read fails
        self.transactions = 0

    def attach(self, device):
        self.devices[device.addr] = device

    def scan(self):
        return sorted(self.devices)

    def _dev(self, addr):
        dev = self.devices.get(addr)
        if dev is None:
            raise OSError(ENODEV)
        return dev

    def readfrom_mem_into(self, addr, memaddr, buf, addrsize=8):
        dev = self._dev(addr)
        self.transactions += 1
        if self.fail_reads:
            self.fail_reads -= 1
            raise OSError(ETIMEDOUT)
        if self.fail_every and self.transactions % self.fail_every == 0:
            raise OSError(ETIMEDOUT)
        dev.read(memaddr, buf)

    def readfrom_mem(self, addr, memaddr, nbytes, addrsize=8):
        buf = bytearray(nbytes)
        self.readfrom_mem_into(addr, memaddr, buf)
        return buf

    def readfrom_into(self, addr, buf, stop=True):
        """A plain read (command-based chips such as the Sensirion sensors)."""
        dev = self._dev(addr)
        self.transactions += 1
        if self.fail_reads:
            self.fail_reads -= 1
            raise OSError(ETIMEDOUT)
        if self.fail_every and self.transactions % self.fail_every == 0:
            raise OSError(ETIMEDOUT)
        dev.read_into(buf)

    def writeto(self, addr, buf, stop=True):
        dev = self._dev(addr)
        self.transactions += 1
        dev.write_cmd(buf)
        return len(buf)

    def writeto_mem(self, addr, memaddr, buf, addrsize=8):
        dev = self._dev(addr)
        self.transactions += 1
        dev.write(memaddr, buf)
