# Sensors as a list: config.json "sensors" (written by the trainer from edgeloop.toml
# [[sensors]]) names each sensor's driver, the run's channels it gives, the quantities they are
# (reads), their counts per unit, range, rate and bus. Sensors reads them all into one
# multi-channel sample, in the order the model was trained on, through one preallocated path.
#
# Each entry: {"driver": "mpu6050" | "adxl345" | "sht3x" | "scd4x", "channels": [...],
#   "reads": [...], "counts_per_unit": [...], "range": {"accel_g", "gyro_dps" | "range_g"},
#   "rate": Hz, "bus": {"i2c": 0, "sda": 21, "scl": 22, "freq": 400000, "addr": 0x68}}
#
# On the virtual board (simhw/world.py) every sensor is its simulated chip on one fake I2C bus,
# all measuring one SharedRow: the current sample of a file (or frame) source in the run's
# counts, advanced once per sample here, so the drivers and chips are exercised at register
# level.
from array import array

_MPU_AXES = ("ax", "ay", "az", "gx", "gy", "gz")


def _index(names, q):
    for i in range(len(names)):
        if names[i] == q:
            return i
    return -1


class _Part:
    def __init__(self, driver, off, pick):
        self.driver = driver
        self.off = off
        self.pick = pick  # None: the driver writes the channels itself; else scratch indices


def make_driver(spec, i2c, rate):
    """The driver for one entry, checked to report the counts the model was trained on."""
    kind = spec["driver"]
    reads = tuple(spec.get("reads", spec["channels"]))
    rng = spec.get("range", {})
    addr = spec.get("bus", {}).get("addr")
    cpu = spec.get("counts_per_unit", ())
    pick = None
    rate = int(rate) if rate >= 1 else 1  # the accelerometers' sample clocks take whole Hz
    if kind == "mpu6050":
        from drivers.mpu6050 import MPU6050

        accel = int(rng.get("accel_g", 16))
        if reads == _MPU_AXES[: len(reads)] and len(reads) <= 3:
            drv = MPU6050(i2c, addr or 0x68, accel, rate)
            have = [drv.lsb_per_g] * 3
        else:
            from drivers.mpu6050_imu import MPU6050IMU

            drv = MPU6050IMU(i2c, addr or 0x68, accel, int(rng.get("gyro_dps", 1000)), rate)
            have = [drv.lsb_per_g] * 3 + [drv.lsb_per_dps] * 3
        if reads != _MPU_AXES[: drv.channels]:
            pick = bytearray(_index(_MPU_AXES, q) for q in reads)
        have = [have[_index(_MPU_AXES, q)] for q in reads]
    elif kind == "adxl345":
        from drivers.adxl345 import ADXL345

        drv = ADXL345(i2c, addr or 0x53, int(rng.get("range_g", 16)), rate)
        if reads != _MPU_AXES[:3]:
            pick = bytearray(_index(_MPU_AXES, q) for q in reads)
        have = [drv.lsb_per_g] * len(reads)
    elif kind == "sht3x":
        from drivers.sht3x import SHT3x

        drv = SHT3x(i2c, addr or 0x44, reads)
        have = drv.counts_per_unit
    elif kind == "scd4x":
        from drivers.scd4x import SCD4x

        drv = SCD4x(i2c, addr or 0x62, reads)
        have = drv.counts_per_unit
    else:
        raise ValueError("unknown sensor driver %r (mpu6050, adxl345, sht3x, scd4x)" % (kind,))
    for i in range(len(cpu)):
        if abs(cpu[i] - have[i]) > 1e-6 * cpu[i]:
            raise ValueError("%s %s: the model was trained at %s counts per unit, the driver "
                             "gives %s" % (kind, reads[i], cpu[i], have[i]))
    return drv, pick


class Sensors:
    """All the run's sensors as one: `channels`, `read_raw_into(out, off)`; OSError from any
    sensor is the read's error (the app counts and reports it)."""

    def __init__(self, specs, bus_for, rate, row=None):
        self.parts = []
        self.row = row  # the simulated world's current sample (virtual board), else None
        self.exhausted = False
        off = 0
        cpu0 = 0
        for spec in specs:
            drv, pick = make_driver(spec, bus_for(spec.get("bus", {})), rate)
            self.parts.append(_Part(drv, off, pick))
            off += len(spec["channels"])
            cpu0 = cpu0 or (spec.get("counts_per_unit") or [1])[0]
        self.channels = off
        self.scratch = array("h", bytes(12))
        self.scale_g = 1.0 / cpu0 if cpu0 else 1.0
        self.lsb_per_g = cpu0

    def read_raw_into(self, out, off=0):
        row = self.row
        if row is not None and not row.advance():
            self.exhausted = True
            raise OSError(5)  # EIO: the simulated world ran out of samples
        for p in self.parts:
            if p.pick is None:
                p.driver.read_raw_into(out, off + p.off)
            else:
                s = self.scratch
                p.driver.read_raw_into(s, 0)
                pk = p.pick
                for i in range(len(pk)):
                    out[off + p.off + i] = s[pk[i]]


def real_buses(pins):
    """bus_for() on a real board: one machine.I2C per bus id, made on first use."""
    from machine import I2C, Pin

    made = {}

    def bus_for(bus):
        bid = bus.get("i2c", 0)
        if bid not in made:
            made[bid] = I2C(bid, sda=Pin(bus.get("sda", pins.get("sda", 21))),
                            scl=Pin(bus.get("scl", pins.get("scl", 22))),
                            freq=bus.get("freq", 400000))
        return made[bid]

    return bus_for
