"""[[sensors]] in edgeloop.toml: checked against the drivers, channels and counts follow."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib

from trainer.config import device_config, load_config, parse_config, to_toml
from trainer.errors import TrainerError

ROOT = Path(__file__).resolve().parents[2]


def cfg_of(text: str):
    return parse_config(tomllib.loads(text), "t.toml")


def test_examples_declare_their_sensors_and_round_trip():
    env = load_config(ROOT / "examples" / "environment" / "edgeloop.toml")
    assert [s.driver for s in env.sensors] == ["sht3x", "scd4x"]
    assert env.channels == ("temperature", "humidity", "co2")
    assert env.counts_per_unit == (100.0, 100.0, 1.0)
    wear = load_config(ROOT / "examples" / "wearable" / "edgeloop.toml")
    assert wear.counts_per_unit == (4096.0,) * 3 + (32.8,) * 3
    assert wear.sensors[0].units == ("g", "g", "g", "dps", "dps", "dps")
    for cfg in (env, wear):
        again = parse_config(tomllib.loads(to_toml(cfg)), "again")
        assert again.sensors == cfg.sensors and again.channels == cfg.channels


def test_sensor_entries_reach_config_json(monkeypatch):
    import trainer.config as tc
    from trainer.features import Calibration

    env = load_config(ROOT / "examples" / "environment" / "edgeloop.toml")
    monkeypatch.setattr(tc, "preprocess_config", lambda c, k: {})  # no training needed here
    out = device_config(env.with_(calibration=Calibration.__new__(Calibration)))
    assert [s["driver"] for s in out["sensors"]] == ["sht3x", "scd4x"]
    assert out["sensors"][1] == {
        "driver": "scd4x", "channels": ["co2"], "reads": ["co2"], "units": ["ppm"],
        "counts_per_unit": [1.0], "range": {}, "rate": env.sample_rate,
        "bus": {"i2c": 0, "addr": 0x62}}


BASE = """
[sensor]
sample_rate = 50
"""


@pytest.mark.parametrize("body,msg", [
    ('[[sensors]]\ndriver = "bmp999"\nchannels = ["t"]', "unknown driver 'bmp999'"),
    ('[[sensors]]\ndriver = "sht3x"\nchannels = ["t", "h"]', "say which sht3x quantity"),
    ('[[sensors]]\ndriver = "sht3x"\nchannels = ["t"]\nreads = ["co2"]', "measures temperature, humidity, not 'co2'"),
    ('[[sensors]]\ndriver = "mpu6050"\nchannels = ["ax"]\nrange = {accel_g = 3}',
     "[sensors.0.range.accel_g] must be one of 2, 4, 8, 16"),
    ('[[sensors]]\ndriver = "mpu6050"\nchannels = ["ax"]\nrange = {gain = 3}',
     "unknown range for the mpu6050"),
    ('[[sensors]]\ndriver = "mpu6050"\nchannels = ["ax"]\ncolour = "red"', "[sensors.0.colour] unknown key"),
    ('[[sensors]]\ndriver = "mpu6050"\nchannels = ["ax"]\n[[sensors]]\ndriver = "adxl345"\n'
     'channels = ["ax"]', "channel 'ax' is read by two sensors"),
    ('[[sensors]]\ndriver = "sht3x"\nchannels = ["temperature"]\nrate = 1',
     "1 Hz is slower than the run's sample_rate 50 Hz"),
])
def test_bad_sensor_entries_say_what_and_where(body: str, msg: str):
    with pytest.raises(TrainerError) as exc:
        cfg_of(BASE + body)
    assert msg in str(exc.value) and "t.toml" in str(exc.value)


def test_sensor_table_must_agree_with_the_sensors():
    sensors = '\n[[sensors]]\ndriver = "mpu6050"\nchannels = ["x", "y"]\nreads = ["ax", "gz"]\n' \
              'range = {accel_g = 4, gyro_dps = 500}\n'
    cfg = cfg_of(BASE + sensors)
    assert cfg.channels == ("x", "y") and cfg.counts_per_unit == (8192.0, 65.5)
    with pytest.raises(TrainerError, match=r"\[sensor.channels\] \['a', 'b'\] differs"):
        cfg_of(BASE + 'channels = ["a", "b"]\n' + sensors)
    with pytest.raises(TrainerError, match=r"\[sensor.counts_per_unit\] .* differs from what"):
        cfg_of(BASE + "counts_per_unit = 2048\n" + sensors)
