"""The sensors a run reads: the `[[sensors]]` list of edgeloop.toml, checked against what each
board driver (firmware_micropython/drivers/) can measure, and turned into config.json entries.

Each driver here mirrors its device driver: the quantities it measures, the counts it reports
per unit at each range (the model is trained on those counts), its default I2C address, and the
fastest rate it measures at. A run's channels are the sensors' channels in declaration order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trainer.errors import TrainerError

_ACCEL = {2: 16384.0, 4: 8192.0, 8: 4096.0, 16: 2048.0}  # MPU6050 AFS_SEL: LSB per g
_GYRO = {250: 131.0, 500: 65.5, 1000: 32.8, 2000: 16.4}  # MPU6050 FS_SEL: LSB per deg/s


@dataclass(frozen=True)
class Driver:
    name: str
    quantities: dict[str, str]  # quantity -> unit
    ranges: dict[str, dict[float, float]]  # range key -> {range value: counts per unit}
    range_of: dict[str, str]  # quantity -> the range key that sets its counts ("" fixed)
    fixed: dict[str, float]  # counts per unit of quantities without a range
    addr: int | None  # default I2C address (None: not on I2C)
    max_rate: float  # fastest new value per second (slower runs: fine; faster: values held)
    defaults: dict[str, float] = field(default_factory=dict)


DRIVERS: dict[str, Driver] = {
    "mpu6050": Driver(
        "mpu6050", {"ax": "g", "ay": "g", "az": "g", "gx": "dps", "gy": "dps", "gz": "dps"},
        {"accel_g": _ACCEL, "gyro_dps": _GYRO},
        {"ax": "accel_g", "ay": "accel_g", "az": "accel_g",
         "gx": "gyro_dps", "gy": "gyro_dps", "gz": "gyro_dps"},
        {}, 0x68, 1000.0, {"accel_g": 16, "gyro_dps": 1000},
    ),
    "adxl345": Driver("adxl345", {"ax": "g", "ay": "g", "az": "g"}, {"range_g": {
        2: 256.0, 4: 256.0, 8: 256.0, 16: 256.0}}, {q: "range_g" for q in ("ax", "ay", "az")},
        {}, 0x53, 3200.0, {"range_g": 16}),
    "sht3x": Driver("sht3x", {"temperature": "degC", "humidity": "%RH"}, {}, {},
                    {"temperature": 100.0, "humidity": 100.0}, 0x44, 10.0),
    "scd4x": Driver("scd4x", {"co2": "ppm", "temperature": "degC", "humidity": "%RH"}, {}, {},
                    {"co2": 1.0, "temperature": 100.0, "humidity": 100.0}, 0x62, 0.2),
    "analog": Driver("analog", {"voltage": "V"}, {}, {}, {"voltage": 65536 / 3.3}, None, 1000.0),
}

_KEYS = {"driver": str, "channels": list, "reads": list, "range": dict, "rate": (int, float),
         "bus": dict}
_BUS_KEYS = {"i2c": int, "sda": int, "scl": int, "freq": int, "addr": int, "pin": int}


@dataclass(frozen=True)
class SensorSpec:
    """One sensor: its driver, the run's names for what it reads, counts per unit of each."""

    driver: str
    channels: tuple[str, ...]
    reads: tuple[str, ...]
    units: tuple[str, ...]
    counts_per_unit: tuple[float, ...]
    range: dict[str, float]
    rate: float | None
    bus: dict[str, int]

    def to_device(self, sample_rate: float) -> dict[str, Any]:
        drv = DRIVERS[self.driver]
        bus = dict(self.bus)
        if drv.addr is not None:
            bus.setdefault("addr", drv.addr)
        return {"driver": self.driver, "channels": list(self.channels), "reads": list(self.reads),
                "units": list(self.units), "counts_per_unit": list(self.counts_per_unit),
                "range": dict(self.range), "rate": self.rate or sample_rate, "bus": bus}

    def to_toml(self) -> str:
        def inline(d: dict) -> str:
            return "{" + ", ".join(f"{k} = {v!r}" for k, v in d.items()) + "}"

        lines = ["[[sensors]]", f'driver = "{self.driver}"',
                 "channels = [" + ", ".join(f'"{c}"' for c in self.channels) + "]",
                 "reads = [" + ", ".join(f'"{c}"' for c in self.reads) + "]"]
        if self.range:
            lines.append(f"range = {inline(self.range)}")
        if self.rate is not None:
            lines.append(f"rate = {self.rate!r}")
        if self.bus:
            lines.append(f"bus = {inline(self.bus)}")
        return "\n".join(lines) + "\n"


def _err(src: str, key: str, msg: str) -> TrainerError:
    return TrainerError(f"{src}: [{key}] {msg}")


def parse_sensor(raw: Any, src: str, i: int) -> SensorSpec:
    """One [[sensors]] entry, checked against its driver; errors name file and entry."""
    key = f"sensors.{i}"
    if not isinstance(raw, dict):
        raise _err(src, key, "must be a table ([[sensors]])")
    for k, v in raw.items():
        want = _KEYS.get(k)
        if want is None:
            raise _err(src, f"{key}.{k}", f"unknown key; known: {', '.join(_KEYS)}")
        if isinstance(v, bool) or not isinstance(v, want):
            raise _err(src, f"{key}.{k}", f"has the wrong type: {v!r}")
    name = raw.get("driver")
    if name not in DRIVERS:
        raise _err(src, f"{key}.driver", f"unknown driver {name!r}; known: {', '.join(DRIVERS)}")
    drv = DRIVERS[name]
    channels = raw.get("channels")
    if not channels or not all(isinstance(c, str) and c for c in channels):
        raise _err(src, f"{key}.channels", f"must be a non-empty list of names, got {channels!r}")
    reads = raw.get("reads")
    if reads is None:
        if all(c in drv.quantities for c in channels):
            reads = channels
        elif name == "analog" and len(channels) == 1:
            reads = ["voltage"]
        else:
            raise _err(src, f"{key}.reads", f"say which {name} quantity each channel is "
                       f"({', '.join(drv.quantities)}): channels {channels} are not their names")
    if len(reads) != len(channels):
        raise _err(src, f"{key}.reads", f"needs one quantity per channel ({len(channels)})")
    for q in reads:
        if q not in drv.quantities:
            raise _err(src, f"{key}.reads", f"the {name} measures {', '.join(drv.quantities)},"
                       f" not {q!r}")
    if len(set(reads)) != len(reads):
        raise _err(src, f"{key}.reads", f"reads a quantity twice: {reads}")
    rng = dict(drv.defaults)
    for k, v in (raw.get("range") or {}).items():
        if k not in drv.ranges:
            known = ", ".join(drv.ranges) or "none (fixed scaling)"
            raise _err(src, f"{key}.range.{k}", f"unknown range for the {name}; known: {known}")
        if v not in drv.ranges[k]:
            raise _err(src, f"{key}.range.{k}", f"must be one of "
                       f"{', '.join(f'{x:g}' for x in drv.ranges[k])}, got {v!r}")
        rng[k] = v
    cpu = tuple(drv.ranges[drv.range_of[q]][rng[drv.range_of[q]]] if q in drv.range_of
                else drv.fixed[q] for q in reads)
    rate = raw.get("rate")
    if rate is not None and not rate > 0:
        raise _err(src, f"{key}.rate", f"must be > 0, got {rate}")
    bus = raw.get("bus") or {}
    for k, v in bus.items():
        if k not in _BUS_KEYS or isinstance(v, bool) or not isinstance(v, int):
            raise _err(src, f"{key}.bus.{k}", f"unknown or not an integer; known: {', '.join(_BUS_KEYS)}")
    return SensorSpec(name, tuple(channels), tuple(reads), tuple(drv.quantities[q] for q in reads),
                      cpu, {k: v for k, v in rng.items() if any(
                          drv.range_of.get(q) == k for q in reads)},
                      float(rate) if rate is not None else None, dict(bus))


def parse_sensors(raw: Any, src: str, sample_rate: float) -> tuple[SensorSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise _err(src, "sensors", "must be a list of tables ([[sensors]] ...)")
    specs = tuple(parse_sensor(r, src, i) for i, r in enumerate(raw))
    names = [c for s in specs for c in s.channels]
    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        raise _err(src, "sensors", f"channel {dup[0]!r} is read by two sensors")
    for i, s in enumerate(specs):
        if s.rate is not None and s.rate < sample_rate and s.driver != "scd4x":
            raise _err(src, f"sensors.{i}.rate", f"{s.rate:g} Hz is slower than the run's "
                       f"sample_rate {sample_rate:g} Hz")
    return specs
