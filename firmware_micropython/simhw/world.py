# The virtual board's world for a sensor list (config.json "sensors"): one fake I2C bus with
# each sensor's simulated chip, all measuring one SharedRow fed from a sample source in the
# run's counts. sensors.Sensors advances the row once per sample.
_MPU_AXES = ("ax", "ay", "az", "gx", "gy", "gz")


def _index(names, q):
    for i in range(len(names)):
        if names[i] == q:
            return i
    return -1


class RowSource:
    """A simulated chip's sample source: some channels of the shared row (never runs out)."""

    def __init__(self, row, indices):
        self.row = row
        self.indices = indices

    def next_into(self, out):
        v = self.row.values
        ix = self.indices
        for i in range(len(ix)):
            out[i] = v[ix[i]] if ix[i] >= 0 else 0
        return True


def sim_bus(specs, source, channels, period_ms, seq=False):
    """The virtual board's world: one fake I2C bus holding each entry's simulated chip, all fed
    from `source` (samples in the run's counts, all channels; seq: sequence numbers hidden in
    them). Returns (bus, row)."""
    from simhw.i2c import I2C
    from simhw.row import SharedRow

    row = SharedRow(source, channels, period_ms, seq)
    bus = I2C()
    off = 0
    for spec in specs:
        kind = spec["driver"]
        reads = tuple(spec.get("reads", spec["channels"]))
        n = len(spec["channels"])
        cpu = spec.get("counts_per_unit") or [1] * n
        addr = spec.get("bus", {}).get("addr")

        def at(q):
            i = _index(reads, q)
            return off + i if i >= 0 else -1

        if kind == "mpu6050":
            acc = [cpu[i] for i in range(n) if reads[i][0] == "a"] or [4096]
            gyr = [cpu[i] for i in range(n) if reads[i][0] == "g"]
            if gyr:
                from simhw.imu import SimMPU6050IMU

                chip = SimMPU6050IMU(RowSource(row, [at(q) for q in _MPU_AXES]), addr or 0x68,
                                     int(acc[0]), int(round(gyr[0] * 10)))
            else:  # the accelerometer alone: the plain chip (less code on a 100 KB heap)
                from simhw.chips import SimMPU6050

                chip = SimMPU6050(RowSource(row, [at(q) for q in _MPU_AXES[:3]]),
                                  addr or 0x68, int(acc[0]))
        elif kind == "adxl345":
            from simhw.chips import SimADXL345

            chip = SimADXL345(RowSource(row, [at(q) for q in _MPU_AXES[:3]]), addr or 0x53,
                              int(cpu[0]))
        elif kind == "sht3x":
            from simhw.sensirion import SimSHT3x

            chip = SimSHT3x(row, addr or 0x44, (at("temperature"), at("humidity")))
        elif kind == "scd4x":
            from simhw.sensirion import SimSCD4x

            chip = SimSCD4x(row, addr or 0x62, (at("co2"), at("temperature"), at("humidity")))
        else:
            raise ValueError("no simulated chip for driver %r" % (kind,))
        bus.attach(chip)
        off += n
    return bus, row
