# A sensor list that is one FIFO sensor becomes the standalone app's "sensor" entry
# (hardware.Hardware imports this at start and drops it again: its code is one-shot).

_IMU_AXES = ["ax", "ay", "az", "gx", "gy", "gz"]


def adopt(cfg):
    """A sensor list that is one FIFO sensor (the machine's 3-axis accelerometer, the
    wearable's 6-axis MPU6050, axes in the chip's order) is read by its driver directly, as
    the "sensor" entry, through the chip's FIFO on the chip's own clock: the list's machinery
    (one polled read per sample) would cost ~5 KB of a 100 KB heap that a large vibration
    model needs, and a polled read per sample is what the FIFO spares the loop."""
    specs = cfg.get("sensors")
    if not specs or len(specs) != 1:
        return
    s = specs[0]
    reads = list(s.get("reads", ()))
    if not (s.get("driver") in ("mpu6050", "adxl345") and reads == _IMU_AXES[:3] or
            s.get("driver") == "mpu6050" and reads == _IMU_AXES):
        return
    scfg = cfg.setdefault("sensor", {})
    scfg.setdefault("kind", s["driver"])
    rng = s.get("range", {})
    if rng.get("accel_g", rng.get("range_g")):
        scfg.setdefault("range_g", rng.get("accel_g", rng.get("range_g")))
    cpu = s.get("counts_per_unit", [16384])
    if len(reads) == 6:
        scfg.setdefault("axes", 6)
        scfg.setdefault("gyro_dps", int(rng.get("gyro_dps", 1000)))
        scfg.setdefault("sim_gyro_units10", int(round(cpu[3] * 10)))
    bus = s.get("bus", {})
    for k in ("addr", "i2c", "sda", "scl", "freq"):
        if k in bus:
            scfg.setdefault(k, bus[k])
    scfg.setdefault("sim_units", int(cpu[0]))
    del cfg["sensors"]
