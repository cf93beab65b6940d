"""`edgeloop fleet` end to end: provisioning, a fleet up on the embedded broker, status, push."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from fleet.kit import fc_model
from typer.testing import CliRunner

from edgeloop.cli import app
from edgeloop.fleet.broker import free_port
from edgeloop.fleet.registry import Fleet
from edgeloop.fleet.serve import Ingestor
from edgeloop.fleet.store import device_rows
from edgeloop.link.deploy import DEFAULT_DEVICE_CONFIG
from edgeloop.vboard import micropython_executable


def _edgeloop(*args: str) -> list[str]:
    return [sys.executable, "-c", "from edgeloop.cli import main; main()", *args]


def test_add_keygen_and_user_errors(tmp_path: Path) -> None:
    home = tmp_path / "f"
    r = CliRunner()
    assert r.invoke(app, ["fleet", "keygen", "--home", str(home)]).exit_code == 0
    res = r.invoke(app, ["fleet", "keygen", "--home", str(home)])
    assert res.exit_code != 0 and "exists" in str(res.exception)
    assert r.invoke(app, ["fleet", "add", "pump-1", "fan_2", "--home", str(home)]).exit_code == 0
    assert sorted(Fleet(home).devices()) == ["fan_2", "pump-1"]
    assert (home / "devices.json").stat().st_mode & 0o077 == 0
    bad = subprocess.run(_edgeloop("fleet", "add", "a/b", "--home", str(home)),
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "device id 'a/b'" in bad.stderr
    nob = subprocess.run(_edgeloop("fleet", "push", "x.elb", "--all", "--home", str(tmp_path / "e")),
                         capture_output=True, text=True)
    assert nob.returncode == 2 and "error:" in nob.stderr


def test_up_status_push(tmp_path: Path) -> None:
    home = tmp_path / "f"
    (tmp_path / "m1.elb").write_bytes(fc_model(1))
    (tmp_path / "m2.elb").write_bytes(fc_model(2))

    (tmp_path / "config.json").write_text(json.dumps(DEFAULT_DEVICE_CONFIG))
    up = subprocess.Popen(_edgeloop("fleet", "up", str(tmp_path / "m1.elb"), "--virtual", "2",
                                    "--home", str(home), "--port", str(free_port()),
                                    "--seconds", "60"),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 40
        rows: list = []
        while time.monotonic() < deadline:
            time.sleep(1)
            if (home / "fleet.db").is_file():
                out = subprocess.run(_edgeloop("fleet", "status", "--json", "--home", str(home)),
                                     capture_output=True, text=True)
                rows = json.loads(out.stdout) if out.returncode == 0 else []
                if len([r for r in rows if r["state"] == "online" and r["free"]]) == 2:
                    break
        assert [r["dev"] for r in rows] == ["vb1", "vb2"], rows
        push = subprocess.run(_edgeloop("fleet", "push", str(tmp_path / "m2.elb"), "--all",
                                        "--canary", "1", "--home", str(home),
                                        "--report", str(tmp_path / "push.json")),
                              capture_output=True, text=True, timeout=120)
        assert push.returncode == 0, push.stdout + push.stderr
        res = json.loads((tmp_path / "push.json").read_text())
        assert res["ok"] and [r["device"] for r in res["results"]] == ["vb1", "vb2"]
        assert all(json.loads((home / "boards" / d / "version.json").read_text())["version"] == 1
                   for d in ("vb1", "vb2"))
    finally:
        up.terminate()
        up.wait(20)


def test_collect_writes_a_dataset_train_reads(fleet, broker, make_board, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from edgeloop.fleet.collect import collect
    from trainer.config import Config
    from trainer.data import load_csv_folder

    board = make_board("d1", pace_ms=50).start()
    board.wait_console('"w": 2', timeout=30)
    rec = collect(fleet, broker.address, "d1", "normal", tmp_path / "data", windows=6)
    lines = rec.path.read_text().splitlines()
    assert lines[0] == "timestamp,ax,ay,az"
    assert rec.samples == 6 * 32 and len(lines) == 1 + rec.samples
    assert rec.path.parent.name == "normal"
    recs = load_csv_folder(tmp_path / "data", Config(sample_rate=rec.rate))
    assert [r.label for r in recs] == ["normal"] and recs[0].data.shape == (rec.samples, 3)


def test_fleet_deploy_puts_identity_and_secrets_on_the_board(fleet, broker, model_file, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from edgeloop.fleet.virtual import FleetBoard

    monkeypatch.setenv("EDGELOOP_WIFI_SSID", "plant-floor")
    monkeypatch.setenv("EDGELOOP_WIFI_PASSWORD", "s3cret-wifi")
    root = tmp_path / "vb"
    res = CliRunner().invoke(app, ["fleet", "deploy", str(model_file), "--device", "d1",
                                   "--broker", broker.address.url, "--board", "virtual",
                                   "--dir", str(root), "--home", str(fleet.home)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "s3cret-wifi" not in res.output and fleet.password("d1") not in res.output
    secrets = json.loads((root / "secrets.json").read_text())
    assert secrets == {"mqtt": {"user": "d1", "password": fleet.password("d1")},
                       "wifi": {"ssid": "plant-floor", "password": "s3cret-wifi"}}
    cfg = json.loads((root / "config.json").read_text())
    assert cfg["fleet"]["device"] == "d1" and cfg["fleet"]["port"] == broker.port
    assert (root / "fleet_key.bin").read_bytes() == fleet.public_key()
    assert cfg["sensor"]["loop"] is True  # a virtual fleet board plays its samples forever
    board = FleetBoard("d1", root, micropython_executable(), 140 * 1024).start()
    try:
        board.wait_console('"w": 3', timeout=30)
        rows: list = []
        deadline = time.monotonic() + 10
        ing = Ingestor(fleet, broker.address).start()
        while time.monotonic() < deadline and not rows:
            time.sleep(0.5)
            ing.flush()
            rows = [r for r in device_rows(fleet.db_path) if r["dev"] == "d1" and r["free"]]
        ing.stop()
        assert rows, board.console()
    finally:
        board.stop()
