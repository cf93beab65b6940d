# InvenSense MPU-6050 accelerometer/gyroscope over I2C (accelerometer part).
# Registers from the MPU-6000/6050 register map rev 4.2; data registers are big-endian int16.
#
# Real-time sampling: start() resets and enables the 1024-byte FIFO; the chip's own clock then
# writes one frame (6 bytes: ACCEL X, Y, Z) per sample period into it, whatever the CPU is doing.
# drain(ring) moves every waiting frame into a sampling.Ring with FIFO_R_W bursts. When the
# FIFO fills, the chip overwrites its oldest bytes and sets INT_STATUS.FIFO_OFLOW_INT: the
# frames left are no longer aligned, so drain() resets the FIFO and counts every sample
# produced since the last drain as lost (ring.lost), never hides them.
from time import ticks_diff, ticks_us

from micropython import const

_SMPLRT_DIV = const(0x19)
_CONFIG = const(0x1A)
_ACCEL_CONFIG = const(0x1C)
_FIFO_EN = const(0x23)
_INT_ENABLE = const(0x38)
_INT_STATUS = const(0x3A)
_ACCEL_XOUT_H = const(0x3B)
_USER_CTRL = const(0x6A)
_PWR_MGMT_1 = const(0x6B)
_FIFO_COUNTH = const(0x72)
_FIFO_R_W = const(0x74)
_WHO_AM_I = const(0x75)
_WHO_AM_I_VALUE = const(0x68)
_CLK_PLL_XGYRO = const(0x01)
_ACCEL_FIFO_EN = const(0x08)  # FIFO_EN bit 3
_FIFO_OFLOW = const(0x10)  # INT_ENABLE / INT_STATUS bit 4
_U_FIFO_EN = const(0x40)  # USER_CTRL bit 6
_U_FIFO_RESET = const(0x04)  # USER_CTRL bit 2 (clears itself)
_FIFO_BYTES = const(1024)
_CHUNK = const(16)  # frames per FIFO_R_W burst (96 bytes)

# AFS_SEL (ACCEL_CONFIG bits 4:3) -> LSB per g
_RANGES = {2: (0, 16384), 4: (1, 8192), 8: (2, 4096), 16: (3, 2048)}

ADDR = const(0x68)  # AD0 low; 0x69 with AD0 high


class MPU6050:
    channels = 3

    def __init__(self, i2c, addr=ADDR, range_g=2, rate_hz=1000):
        if range_g not in _RANGES:
            raise ValueError("MPU6050 range_g must be 2, 4, 8 or 16, not %r" % (range_g,))
        div = round(1000 / rate_hz) - 1 if rate_hz > 0 else -1
        if not 0 <= div <= 255 or abs(1000 / (1 + div) - rate_hz) > 1e-6 * rate_hz:
            raise ValueError(
                "the MPU6050 samples at 1000/(1+n) Hz (1000, 500, 333.3, 250, 200, ..., 3.9); "
                "%r Hz is not one of them" % (rate_hz,)
            )
        self.i2c = i2c
        self.addr = addr
        # one FIFO frame per sample: ACCEL X, Y, Z (then GYRO X, Y, Z on the 6-axis IMU)
        self._frame = frame = 2 * self.channels
        self.fifo_samples = _FIFO_BYTES // frame  # 170 samples: 170 ms at 1 kHz (3 axes)
        self._buf = bytearray(_CHUNK * frame)
        mv = memoryview(self._buf)
        # bursts of 16, 8, 4, 2, 1 frames, made once: drain() slices nothing
        self._views = [mv[: (_CHUNK >> i) * frame] for i in range(5)] + [mv[:2]]
        self._one = bytearray(1)
        who = self._read_reg(_WHO_AM_I)
        if who != _WHO_AM_I_VALUE:
            raise OSError("no MPU6050 at 0x%02x (WHO_AM_I=0x%02x, expected 0x68)" % (addr, who))
        self._write_reg(_PWR_MGMT_1, _CLK_PLL_XGYRO)  # wake up, clock from gyro PLL
        # DLPF on (1 kHz sample clock) at the widest accelerometer bandwidth below Nyquist:
        # DLPF_CFG 1..6 = 184, 94, 44, 21, 10, 5 Hz
        dlpf = 1
        for bw in b"\xb8\x5e\x2c\x15\x0a":
            if bw * 2 <= rate_hz:
                break
            dlpf += 1
        self._write_reg(_CONFIG, dlpf)
        self._write_reg(_SMPLRT_DIV, div)
        afs, lsb_per_g = _RANGES[range_g]
        self._write_reg(_ACCEL_CONFIG, afs << 3)
        self.range_g = range_g
        self.rate_hz = 1000 / (1 + div)
        self.period = (1000 * (1 + div), 1)  # (num, den) us per sample
        self.lsb_per_g = lsb_per_g
        self.scale_g = 1.0 / lsb_per_g
        self._t = 0  # ticks_us of the last drain
        self._left = 0  # frames left in the FIFO at the last drain (ring full)

    def _read_reg(self, reg):
        self.i2c.readfrom_mem_into(self.addr, reg, self._one)
        return self._one[0]

    def _write_reg(self, reg, value):
        self._one[0] = value
        self.i2c.writeto_mem(self.addr, reg, self._one)

    def read_raw_into(self, out, off=0):
        """X, Y, Z acceleration as signed counts into out[off:off+3]; no allocation."""
        b = self._buf
        self.i2c.readfrom_mem_into(self.addr, _ACCEL_XOUT_H, self._views[4])
        for i in range(3):
            v = (b[2 * i] << 8) | b[2 * i + 1]
            out[off + i] = v - 65536 if v & 0x8000 else v

    def read_g(self):
        """(x, y, z) in g. Allocates (floats, a tuple): for setup and tests, not the hot loop."""
        raw = [0, 0, 0]
        self.read_raw_into(raw)
        s = self.scale_g
        return (raw[0] * s, raw[1] * s, raw[2] * s)

    # -- real-time sampling through the FIFO ------------------------------------------------

    def start(self):
        """Empty and enable the FIFO: from now on every sample the chip takes is kept in it."""
        self._write_reg(_USER_CTRL, 0)
        self._write_reg(_FIFO_EN, _ACCEL_FIFO_EN if self.channels == 3 else _ACCEL_FIFO_EN | 0x70)
        self._write_reg(_INT_ENABLE, _FIFO_OFLOW)
        self._write_reg(_USER_CTRL, _U_FIFO_RESET)
        self._read_reg(_INT_STATUS)  # clears a stale overflow flag
        self._write_reg(_USER_CTRL, _U_FIFO_EN)
        self._t = ticks_us()
        self._left = 0

    def due_in(self):
        return -1  # sampled by its own clock: no read to wake up for

    def waiting(self):
        """Whole frames in the FIFO (FIFO_COUNTH/L, read high byte first)."""
        b = self._buf
        self.i2c.readfrom_mem_into(self.addr, _FIFO_COUNTH, self._views[5])
        return ((b[0] << 8) | b[1]) // self._frame

    def drain(self, ring):
        """Move the FIFO's frames into ring (as many as fit); returns how many. Allocates
        nothing. An overflow resets the FIFO and adds the samples it cost to ring.lost."""
        b = self._buf
        self.i2c.readfrom_mem_into(self.addr, _FIFO_COUNTH, self._views[5])
        now = ticks_us()  # the count holds every sample taken until about now
        count = (b[0] << 8) | b[1]
        # read after the count: an overflow between the two reads shows as a full count
        # (1024 bytes; whole frames never fill it exactly)
        if self._read_reg(_INT_STATUS) & _FIFO_OFLOW or count >= _FIFO_BYTES:
            return self._overflow(ring, 0)
        n = count // self._frame
        space = ring.space()
        take = n if n <= space else space
        # near full, the chip may overflow while the bursts run: check before keeping each
        risky = count > _FIFO_BYTES // 2
        left = take
        i = 0
        k = _CHUNK
        while left:
            while k > left:
                k >>= 1
                i += 1
            self.i2c.readfrom_mem_into(self.addr, _FIFO_R_W, self._views[i])
            if risky:
                try:
                    oflow = self._read_reg(_INT_STATUS) & _FIFO_OFLOW
                except OSError:  # these frames left the FIFO: keep them, the next drain looks
                    oflow = 0
                if oflow:
                    return self._overflow(ring, take - left)
            ring.put16(b, k, True)
            left -= k
        self._t = now
        self._left = n - take
        return take

    def _overflow(self, ring, kept):
        # the FIFO's bytes are no longer aligned to frames: reset it; every sample taken since
        # the last count (those left then, and one per period since) that did not reach the
        # ring is lost, counted at the reset itself
        now = ticks_us()
        self._write_reg(_USER_CTRL, _U_FIFO_RESET | _U_FIFO_EN)
        dt = ticks_diff(now, self._t)
        p = self.period[0]
        lost = self._left + ((dt if dt < 0xFFFFFFF else 0xFFFFFFF) + (p >> 1)) // p - kept
        self._t = now
        self._left = 0
        ring.lost += lost if lost > 0 else 1
        ring.overflows += 1
        return kept
