"""Deploy to the virtual board for real: verified, incremental, atomic, and the app running."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from converters.golden import run_bundle
from edgeloop.boards import get_board
from edgeloop.link import deploy as dp
from edgeloop.link.transport import LinkError
from edgeloop.link.virtual import VirtualTransport
from edgeloop.twins import machine_recording

VIRTUAL = get_board("virtual")
BARE = dp.DEFAULT_DEVICE_CONFIG  # these tests deploy a bare bundle on purpose


def write_bundle(tmp_path: Path, data: bytes, name: str) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.fixture
def board(tmp_path: Path) -> VirtualTransport:
    return VirtualTransport(tmp_path / "vboard", VIRTUAL)


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_deploy_verifies_then_copies_nothing(tmp_path, board, bundles) -> None:
    plan = dp.plan_deploy(write_bundle(tmp_path, bundles[0], "m.elb"), VIRTUAL, True, config=BARE)
    first = dp.deploy(board, plan)
    assert first.verified and first.verify_detail["match"]
    assert first.skipped == []
    for f in ("main.py", "app.mpy", "elrt/__init__.mpy", "drivers/mpu6050.mpy", "config.json"):
        assert f in first.copied
    assert first.copied[-1] == "model.elb"  # the model goes last
    assert (board.root / "model.elb").read_bytes() == bundles[0]
    assert not list(board.root.rglob("*.tmp"))

    # Same plan again (others may edit firmware sources while this runs in a shared tree).
    again = dp.deploy(board, plan)
    assert again.copied == [] and again.bytes_copied == 0
    assert sorted(again.skipped) == sorted(first.copied)
    assert again.verified


def test_new_model_replaces_only_the_model(tmp_path, board, bundles) -> None:
    plan = dp.plan_deploy(write_bundle(tmp_path, bundles[0], "a.elb"), VIRTUAL, True, config=BARE)
    dp.deploy(board, plan)
    res = dp.deploy(board, dp.DeployPlan(plan.files, bundles[1], plan.config_source))
    assert res.copied == ["model.elb"] and res.verified


class CutCable(VirtualTransport):
    """Writes half of the new model, then the link dies (a pulled cable, a board reset)."""

    def fs_put(self, data: bytes, remote_path: str) -> None:
        if remote_path == "model.elb.tmp":
            super().fs_put(data[: len(data) // 2], remote_path)
            raise LinkError("serial link failed: device disconnected")
        super().fs_put(data, remote_path)


class FlipBit(VirtualTransport):
    """Delivers the model with one bit flipped (noise on the line)."""

    def fs_put(self, data: bytes, remote_path: str) -> None:
        if remote_path == "model.elb.tmp":
            data = bytearray(data)
            data[len(data) // 2] ^= 0x10
        super().fs_put(bytes(data), remote_path)


def test_interrupted_deploy_keeps_the_old_model(tmp_path, board, bundles) -> None:
    old = dp.plan_deploy(write_bundle(tmp_path, bundles[0], "a.elb"), VIRTUAL, True, config=BARE)
    dp.deploy(board, old)
    new = dp.DeployPlan(old.files, bundles[1], old.config_source)
    with pytest.raises(LinkError, match="disconnected"):
        dp.deploy(CutCable(board.root, VIRTUAL), new)
    assert board.fs_hash("model.elb") == sha(bundles[0])
    assert dp.verify_on_board(board, bundles[0])["match"]  # the old model still loads and runs
    # and the next deploy goes through, copying only the model
    res = dp.deploy(board, new)
    assert res.copied == ["model.elb"] and res.verified


def test_corrupted_transfer_is_caught_by_the_crc_on_the_board(tmp_path, board, bundles) -> None:
    old = dp.plan_deploy(write_bundle(tmp_path, bundles[0], "a.elb"), VIRTUAL, True, config=BARE)
    dp.deploy(board, old)
    new = dp.DeployPlan(old.files, bundles[1], old.config_source)
    with pytest.raises(dp.DeployError, match="failed its CRC check on the board"):
        dp.deploy(FlipBit(board.root, VIRTUAL), new)
    assert board.fs_hash("model.elb") == sha(bundles[0])
    assert board.fs_hash("model.elb.tmp") is None


def test_damaged_bundle_is_refused_on_the_host(tmp_path, bundles) -> None:
    bad = bytearray(bundles[0])
    bad[-1] ^= 1
    with pytest.raises(dp.DeployError, match="damaged"):
        dp.plan_deploy(write_bundle(tmp_path, bytes(bad), "bad.elb"), VIRTUAL, True)
    with pytest.raises(dp.DeployError, match="not an EdgeLoop model bundle"):
        dp.plan_deploy(write_bundle(tmp_path, b"hello", "x.elb"), VIRTUAL, True)
    with pytest.raises(dp.DeployError, match="neither model.elb nor model_int8.tflite"):
        dp.plan_deploy(tmp_path, VIRTUAL, True)


def test_damaged_tflite_is_refused_naming_the_file(tmp_path, tflite_model) -> None:
    bad = tmp_path / "cut.tflite"
    bad.write_bytes(tflite_model[: len(tflite_model) // 3])
    with pytest.raises(dp.DeployError, match=f"^{bad}: malformed or truncated"):
        dp.plan_deploy(bad, VIRTUAL, True)


@pytest.mark.parametrize("virtual", [True, False])
def test_run_the_app_cannot_feed_is_refused_before_copying(tmp_path, bundles, virtual) -> None:
    """A 6-axis wearable run or per-channel ranges used to crash in int() during deploy/on board."""
    model = write_bundle(tmp_path, bundles[0], "m.elb")
    six = {"channels": ["ax", "ay", "az", "gx", "gy", "gz"], "counts_per_unit": 4096}
    with pytest.raises(dp.DeployError, match="6 channels .* reads one mpu6050 \\(3 channels\\)"):
        dp.plan_deploy(model, VIRTUAL, virtual, config=six)
    mixed = {"channels": ["t", "h", "co2"], "counts_per_unit": [100, 100, 5]}
    with pytest.raises(dp.DeployError, match="counts_per_unit \\[100, 100, 5\\] differs"):
        dp.plan_deploy(model, VIRTUAL, virtual, config=mixed)
    off_range = {"channels": ["ax", "ay", "az"], "counts_per_unit": [1024.0, 1024.0, 1024.0]}
    with pytest.raises(dp.DeployError, match="counts_per_unit 1024.0 is no MPU6050 range"):
        dp.plan_deploy(model, VIRTUAL, virtual, config=off_range)  # app.py would stop at start
    same = {"channels": ["ax", "ay", "az"], "counts_per_unit": [2048, 2048, 2048]}
    plan = dp.plan_deploy(model, VIRTUAL, virtual, config=same)
    assert json.loads(plan.files["config.json"])["counts_per_unit"] == 2048


def test_run_folder_tflite_is_converted_and_config_deployed(tmp_path, board, tflite_model) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "model_int8.tflite").write_bytes(tflite_model)
    cfg = {"mode": "standalone", "counts_per_unit": 2048, "decision": {"n": 2, "m": 4}}
    (run / "config.json").write_text(json.dumps(cfg))
    res = dp.deploy(board, dp.plan_deploy(run, VIRTUAL, virtual=True))
    assert res.verified
    on_board = json.loads(board.fs_read("config.json"))
    assert on_board["decision"] == {"n": 2, "m": 4}
    assert on_board["pins"] == VIRTUAL.pins
    assert on_board["sensor"]["sim_units"] == 2048  # the simulated chip answers in trained counts


def host_prediction(samples: bytes, bundle: bytes, lsb: int, in_scale: float, zp: int):
    """What the board's app must report per window: raw features -> golden -> argmax/max."""
    counts = np.frombuffer(samples, dtype="<i2").reshape(-1, 3).astype(np.int64)
    n = len(counts) // 32
    win = counts[: n * 32].reshape(n, 32, 3)
    f = (1.0 / lsb) / in_scale
    shift = 16
    while shift > 0 and abs(f) * (1 << shift) >= 1 << 14:
        shift -= 1
    mult = int(round(f * (1 << shift)))
    q = ((win * mult + (1 << (shift - 1))) >> shift) + zp
    x = np.clip(q, -128, 127).astype(np.int8).reshape(n, 1, 32, 3)
    y = np.concatenate([run_bundle(bundle, xi) for xi in x]).reshape(n, -1)
    return y.argmax(axis=1), y.max(axis=1)


def test_app_runs_on_simulated_mpu6050_and_matches_the_host(
    read_status, tmp_path, board, bundles
) -> None:
    cfg = dict(
        dp.DEFAULT_DEVICE_CONFIG, decision={"threshold": 0.3, "n": 2, "m": 3, "fault_classes": [1]},
        sensor={"kind": "mpu6050", "sim_clock": "replay"},  # 20 s of samples as fast as drained
    )
    plan = dp.plan_deploy(write_bundle(tmp_path, bundles[0], "m.elb"), VIRTUAL, True, config=cfg,
                          sim_recording=machine_recording)
    assert dp.deploy(board, plan).verified
    lines = read_status(board)
    start, windows, end = lines[0], lines[1:-1], lines[-1]
    assert start["event"] == "start" and start["sim"] is True and start["window"] == 32
    assert end["event"] == "end" and end["windows"] == len(windows) == 20000 // 32
    assert end["errors"] == 0

    in_scale, zp = board.eval(
        "(lambda m: (m.load('model.elb'), m.input_scale, m.input_zero_point))"
        "(__import__('elrt').Model())[1:]"
    )
    cls, score = host_prediction(plan.files["samples.s16"], bundles[0], 16384, in_scale, zp)
    assert [w["cls"] for w in windows] == cls.tolist()
    assert [w["score"] for w in windows] == score.tolist()
    # decision: 2 of the last 3 windows in class 1 at >= threshold; relay follows the alarm
    thr_q = int(round(0.3 / (1 / 256))) - 128
    pos = (cls == 1) & (score >= thr_q)
    alarm = [bool(pos[max(0, i - 2) : i + 1].sum() >= 2) for i in range(len(pos))]
    assert [w["alarm"] for w in windows] == alarm
    assert end["actuations"] == sum(a != b for a, b in zip([False] + alarm, alarm, strict=False))
    assert all(w["free"] > 0 for w in windows)


def test_app_survives_sensor_read_errors(read_status, tmp_path, board, bundles) -> None:
    cfg = dict(dp.DEFAULT_DEVICE_CONFIG, sensor={
        "kind": "mpu6050", "fail_every": 97, "sim_clock": "replay", "sim_seq": True})
    plan = dp.plan_deploy(write_bundle(tmp_path, bundles[0], "m.elb"), VIRTUAL, True, config=cfg,
                          sim_recording=machine_recording)
    dp.deploy(board, plan, verify=False)
    lines = read_status(board)
    errors = [x for x in lines if x.get("event") == "sensor_error"]
    end = lines[-1]
    assert errors and errors[0]["errno"] == 110
    # every 97th bus transaction fails (status, FIFO count or a FIFO burst); a failed
    # transaction moves no data, the next drain reads it again: every sample arrives once
    assert end["event"] == "end" and end["errors"] >= 10
    assert end["windows"] == 20000 // 32 and end["samples"] == 20000
    assert end["lost"] == 0 and end["seq_lost"] == 0 and end["seq_dup"] == 0
    assert len(errors) == end["errors"]  # each isolated error reported


def test_pipeline_allocates_nothing_per_window(tmp_path, board, bundles) -> None:
    dp.deploy(board, dp.plan_deploy(write_bundle(tmp_path, bundles[0], "m.elb"), VIRTUAL, True,
                                          config=BARE))
    code = """
import micropython, elrt
from array import array
from pipeline import Pipeline, RawFeatures
from decision import Decision
m = elrt.Model()
m.load('model.elb')
p = Pipeline(m, RawFeatures(1 / 16384, m.input_scale, m.input_zero_point),
             Decision(3, m.output_scale, m.output_zero_point), 32, 16, 3)
s = array('h', [100, -2000, 16384])
def go(p, s, n):
    for i in range(n):
        s[0] = i
        if p.push(s):
            p.run()
go(p, s, 64)
micropython.heap_lock()
go(p, s, 320)
micropython.heap_unlock()
print(p.windows)
"""
    assert board.exec(code).strip() == str(3 + 20)


def test_cli_deploy_json(tmp_path, bundles, monkeypatch, capsys) -> None:
    from edgeloop import cli

    src = write_bundle(tmp_path, bundles[0], "m.elb")
    (tmp_path / "config.json").write_text(json.dumps(BARE))  # the model's config beside it
    argv = [
        "edgeloop",
        "deploy",
        str(src),
        "--board",
        "virtual",
        "--dir",
        str(tmp_path / "vb"),
        "--json",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    cli.main()
    first = json.loads(capsys.readouterr().out)
    assert first["verified"] is True and "model.elb" in first["copied"]
    cli.main()
    second = json.loads(capsys.readouterr().out)
    # only firmware sources someone edited meanwhile may be copied again, never the model
    assert "model.elb" in second["skipped"] and "config.json" in second["skipped"]
    assert second["verified"] is True
    assert set(second) >= {"copied", "skipped", "verified"}


def test_cli_monitor_shows_status_lines(tmp_path, board, bundles, monkeypatch, capsys) -> None:
    from edgeloop import cli

    # the lines, not the timing (test_monitor_runs_in_real_time): replayed as fast as drained,
    # so a loaded host that starves the board for a stride skips no window here
    cfg = dict(dp.DEFAULT_DEVICE_CONFIG, max_windows=5, sensor={"sim_clock": "replay"})
    plan = dp.plan_deploy(write_bundle(tmp_path, bundles[0], "m.elb"), VIRTUAL, True, config=cfg,
                          sim_recording=machine_recording)
    dp.deploy(board, plan, verify=False)
    monkeypatch.setattr(
        sys,
        "argv",
        ["edgeloop", "monitor", "--board", "virtual", "--dir", str(board.root), "--seconds", "60"],
    )
    cli.main()
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("[start] ") and "sim=True" in out[0]
    assert [line.split()[0] for line in out[1:6]] == [f"w={i}" for i in range(1, 6)]
    assert "infer=" in out[1] and "free=" in out[1]
    assert out[-1].startswith("[end] ") and "windows=5" in out[-1]

    monkeypatch.setattr(
        sys,
        "argv",
        ["edgeloop", "monitor", "--board", "virtual", "--dir", str(board.root), "--raw"],
    )
    cli.main()
    raw = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["w"] for r in raw[1:-1]] == [1, 2, 3, 4, 5]


def test_monitor_runs_in_real_time(tmp_path, board, bundles, monkeypatch, capsys) -> None:
    """On the virtual board the simulated MPU6050 samples at 1 kHz of wall-clock time, so
    `--seconds` bounds what is seen: never more windows than that much signal holds."""
    import time

    from edgeloop import cli

    plan = dp.plan_deploy(write_bundle(tmp_path, bundles[0], "m.elb"), VIRTUAL, True,
                          config=dp.DEFAULT_DEVICE_CONFIG, sim_recording=machine_recording)
    dp.deploy(board, plan, verify=False)
    argv = ["edgeloop", "monitor", "--board", "virtual", "--dir", str(board.root), "--seconds",
            "1.5", "--raw"]
    monkeypatch.setattr(sys, "argv", argv)
    t0 = time.monotonic()
    cli.main()
    took = time.monotonic() - t0
    raw = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    windows = [r for r in raw if "w" in r]
    assert took >= 1.5
    assert raw[0]["event"] == "start" and raw[0]["clock"] == "wall"
    # no more windows than the wall-clock time it ran holds (20 s of twin signal is 625)
    assert 1 <= len(windows) <= took * 1000 // 32
    assert all(w["lost"] == 0 for w in windows)


def test_monitor_without_a_deployed_app(tmp_path, monkeypatch, capsys) -> None:
    from edgeloop import cli

    monkeypatch.setattr(
        sys, "argv", ["edgeloop", "monitor", "--board", "virtual", "--dir", str(tmp_path / "empty")]
    )
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 2
    assert "no app on the virtual board at" in capsys.readouterr().err
    assert not (tmp_path / "empty").exists()  # a failed monitor left an empty board folder


def test_monitor_shows_a_probability(tmp_path, board) -> None:
    """The raw int8 score (127) is no number a user reads; the board's config says its scale."""
    from edgeloop.commands.boards import _output_quant, _pretty

    line = json.dumps({"w": 3, "label": "bearing", "score": 127, "alarm": True, "us": 900,
                       "free": 5000, "errors": 0})
    assert "score=127" in _pretty(line)  # a board deployed without output quantization
    board.fs_put(json.dumps({"decision": {"output_scale": 1 / 256, "output_zero_point": -128}})
                 .encode(), "config.json")
    quant = _output_quant(board)
    assert quant == (1 / 256, -128, False)
    assert "w=3 bearing p=1.00 ALARM" in _pretty(line, quant)
    low = json.dumps({"w": 4, "label": "normal", "score": -52, "alarm": False})
    assert "p=0.30 ok" in _pretty(low, quant)


def test_a_model_without_its_run_config_is_refused(tmp_path, bundles, tflite_model) -> None:
    """A convert output folder or a bare model was deployed on the default config, passed
    verify and then raised ALARM on healthy data."""
    conv = tmp_path / "build" / "m"  # what `edgeloop convert runs/m/model_int8.tflite` writes
    conv.mkdir(parents=True)
    write_bundle(conv, bundles[0], "model.elb")
    run = tmp_path / "runs" / "m"
    run.mkdir(parents=True)
    (run / "model_int8.tflite").write_bytes(tflite_model)
    (conv / "report.json").write_text(json.dumps({"model": str(run / "model_int8.tflite")}))
    with pytest.raises(dp.DeployError, match="no config.json beside the model .* --config"):
        dp.plan_deploy(tmp_path / "runs" / "m" / "model_int8.tflite", VIRTUAL, True)
    (run / "config.json").write_text(json.dumps({"counts_per_unit": 2048}))
    with pytest.raises(dp.DeployError, match=f"deploy the run folder `edgeloop deploy {run}`"):
        dp.plan_deploy(conv, VIRTUAL, True)
    plan = dp.plan_deploy(run / "model_int8.tflite", VIRTUAL, True)  # config.json beside it
    assert plan.config_source == str(run / "config.json")


def test_a_config_of_another_model_is_refused(tmp_path, bundles) -> None:
    from converters.bundle import parse_bundle

    t = parse_bundle(bundles[0]).tensors[parse_bundle(bundles[0]).inputs[0]]
    model = write_bundle(tmp_path, bundles[0], "model.elb")
    mine = {"counts_per_unit": 2048,
            "preprocess": {"input_scale": t.scale, "input_zero_point": t.zero_point}}
    dp.plan_deploy(model, VIRTUAL, True, config=mine)
    other = json.loads(json.dumps(mine))
    other["preprocess"]["input_zero_point"] = t.zero_point + 1
    with pytest.raises(dp.DeployError, match="belongs to another training run"):
        dp.plan_deploy(model, VIRTUAL, True, config=other)
