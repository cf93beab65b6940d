"""The standalone app with a trained run: preprocessing, model and decision on the virtual board.

Uses the rotating-machine run the HIL bench trains and caches (hil_tests/model.py), so the
whole suite trains it once. The board plays the twin through the simulated MPU6050 of its
[[sensors]] list: 10 s
healthy, then a bearing fault that grows; the app must not alarm before the fault, must alarm
(and, the decision's action being "stop", latch the relay) before the recording ends.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeloop.boards import get_board, with_sim_heap
from edgeloop.link import deploy as dp
from edgeloop.link.virtual import VirtualTransport
from edgeloop.twins import machine_recording


@pytest.fixture(scope="module")
def trained_run() -> Path:
    from hil_tests.model import ensure_run_locked

    return ensure_run_locked()  # the HIL bench's run and lock: the suite trains once


def test_trained_app_alarms_on_the_bearing_fault_only(read_status, tmp_path, trained_run) -> None:
    # An ESP32-sized heap for the firmware, plus what the simulated hardware takes that a
    # real board never loads (simhw/: the clocked MPU6050 and its FIFO, the bus, pins and the
    # sample-file reader, ~12 KB on this 64-bit port; 32-bit ports need about 40 % less).
    profile = with_sim_heap(get_board("esp32"))
    board = VirtualTransport(tmp_path / "vb", profile)
    plan = dp.plan_deploy(trained_run, get_board("virtual"), virtual=True)
    cfg = json.loads(plan.files["config.json"])
    assert cfg["preprocess"] and [s["driver"] for s in cfg["sensors"]] == ["mpu6050"]
    cfg["sensor"]["sim_clock"] = "replay"  # 60 s of signal as fast as the app drains it
    plan.files["config.json"] = json.dumps(cfg).encode()
    seconds, fault_at = 60, 10.0
    plan.files["samples.s16"] = machine_recording(  # in counts: the chips give them exactly
        cfg["counts_per_unit"], seconds=seconds, fault_at_s=fault_at
    )
    assert dp.deploy(board, plan).verified

    lines = read_status(board)
    start, windows, end = lines[0], lines[1:-1], lines[-1]
    assert start["event"] == "start" and start["window"] == cfg["window"]
    assert end["event"] == "end" and end["errors"] == 0
    stride, window, rate = cfg["stride"], cfg["window"], cfg["sample_rate"]
    assert len(windows) == (seconds * 1000 - window) // stride + 1
    t_end = [(w["w"] - 1) * stride / rate + window / rate for w in windows]  # window end, s
    before = [w for w, t in zip(windows, t_end, strict=True) if t <= fault_at]
    assert not any(w["alarm"] for w in before), "false alarm on the healthy machine"
    first_alarm = next(t for w, t in zip(windows, t_end, strict=True) if w["alarm"])
    assert fault_at < first_alarm < seconds
    assert cfg["decision"]["action"] == "stop"
    assert end["actuations"] == 1 and end["alarm"] is True  # latched
    assert min(w["free"] for w in windows) > 4096  # headroom left on the 100 KB heap


def test_wearable_app_reads_the_six_axis_imu_through_its_fifo(read_status, tmp_path) -> None:
    """A sensor list that is one 6-axis MPU6050 (the wearable) is read through the chip's FIFO
    (12-byte accelerometer + gyroscope frames), not polled: every sample of the recording
    reaches the windows, in order (the hidden sequence numbers), nothing lost."""
    from edgeloop.twins import domain_recording
    from hil_tests.domains import ensure_domain_run

    run = ensure_domain_run("wearable")
    profile = get_board("esp32s3")
    board = VirtualTransport(tmp_path / "vb", profile)
    cfg = json.loads((run / "config.json").read_text())
    cfg["sensor"] = {"sim_clock": "replay", "sim_seq": True}
    cfg["max_windows"] = 20
    plan = dp.plan_deploy(run, profile, virtual=True, config=cfg, sim_world=domain_recording)
    dp.deploy(board, plan, verify=False)
    lines = read_status(board)
    start, windows, end = lines[0], [x for x in lines if "w" in x], lines[-1]
    assert start["event"] == "start" and start["channels"] == 6 and start["fifo"] == 85, start
    assert end["event"] == "end" and end["errors"] == 0 and end["windows"] == 20, end
    assert end["samples"] >= cfg["window"] + 19 * cfg["stride"] and end["seq_n"] == end["samples"]
    assert end["seq_lost"] == end["seq_dup"] == end["lost"] == end["skipped"] == 0, end
    assert [w["w"] for w in windows] == list(range(1, 21))
