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
    from edgeloop.link.deploy import DEFAULT_DEVICE_CONFIG  # the models' config beside them

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
