"""SerialTransport at mpremote's API boundary, and `edgeloop devices` at pyserial's.

The fake mpremote transport runs each raw-REPL exec on a virtual board, so the code EdgeLoop
sends to a real board is executed by real MicroPython here.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import mpremote.transport_serial
import pytest
from mpremote.transport import TransportError

from edgeloop.link import serialport as sp
from edgeloop.link import transport as tr
from edgeloop.link.virtual import VirtualTransport
from edgeloop.vboard import VirtualBoard


class FakeSerial:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.incoming = b""
        self.timeout = None

    def write(self, b: bytes) -> None:
        self.written.append(b)

    @property
    def in_waiting(self) -> int:
        return len(self.incoming)

    def read(self, n: int = 1) -> bytes:
        out, self.incoming = self.incoming[:n], self.incoming[n:]
        return out


class FakeMpremote:
    """mpremote.transport_serial.SerialTransport's surface, backed by a virtual board."""

    busy: set[str] = set()
    instances: list[FakeMpremote] = []
    board_root: Path

    def __init__(self, device: str, baudrate: int = 115200, **kw: object) -> None:
        if device in self.busy:
            raise TransportError("failed to access " + device)
        self.device = device
        self.baudrate = baudrate
        self.board = VirtualBoard(self.board_root)
        self.serial = FakeSerial()
        self.calls: list[tuple] = []
        self.closed = False
        FakeMpremote.instances.append(self)

    def enter_raw_repl(self, soft_reset: bool = True) -> None:
        self.calls.append(("enter_raw_repl", soft_reset))

    def exit_raw_repl(self) -> None:
        self.calls.append(("exit_raw_repl",))

    def exec_raw_no_follow(self, command: str) -> None:
        self.calls.append(("exec_raw_no_follow", command))

    def exec_raw(self, command: str, timeout: float = 10, data_consumer: object = None):
        self.calls.append(("exec_raw", timeout))
        res = self.board.run(command)
        err = "" if res.returncode == 0 else res.stdout + res.stderr
        return res.stdout.encode(), err.encode()

    def fs_writefile(self, dest: str, data: bytes, chunk_size: int = 256, **kw: object) -> None:
        self.calls.append(("fs_writefile", dest, chunk_size))
        path = self.board.root / dest
        if not path.parent.is_dir():
            raise TransportError(f"OSError: [Errno 2] ENOENT {dest}")
        path.write_bytes(data)

    def fs_readfile(self, src: str, chunk_size: int = 256, **kw: object) -> bytes:
        return (self.board.root / src).read_bytes()

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def mp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> type[FakeMpremote]:
    FakeMpremote.board_root = tmp_path / "board"
    FakeMpremote.instances = []
    FakeMpremote.busy = set()
    monkeypatch.setattr(mpremote.transport_serial, "SerialTransport", FakeMpremote)
    return FakeMpremote


@pytest.fixture
def port(tmp_path: Path) -> str:
    p = tmp_path / "ttyACM0"
    p.write_text("")
    return str(p)


def test_opens_raw_repl_and_runs_code(mp, port) -> None:
    with sp.SerialTransport(port, baudrate=230400) as t:
        assert t.exec("print(6 * 7)").strip() == "42"
        assert t.eval("[1, 'a', None]") == [1, "a", None]
        fake = mp.instances[0]
        assert fake.baudrate == 230400
        assert fake.calls[0] == ("enter_raw_repl", False)  # no soft reset: see SerialTransport
    assert fake.closed


def test_board_exception_carries_its_traceback(mp, port) -> None:
    with sp.SerialTransport(port) as t:
        with pytest.raises(tr.BoardError) as exc:
            t.exec("import nosuchmodule")
    assert "ImportError: no module named 'nosuchmodule'" in str(exc.value)
    assert "Traceback" in exc.value.board_traceback


def test_files_hashes_rename_remove(mp, port) -> None:
    data = bytes(range(256)) * 5
    with sp.SerialTransport(port) as t:
        t.fs_makedirs("lib/deep")
        t.fs_put(data, "lib/deep/blob.bin")
        assert t.fs_read("lib/deep/blob.bin") == data
        assert t.fs_hashes(["lib/deep/blob.bin", "missing"]) == {
            "lib/deep/blob.bin": hashlib.sha256(data).hexdigest(),
            "missing": None,
        }
        t.fs_put(b"new", "lib/deep/blob.tmp")
        t.fs_rename("lib/deep/blob.tmp", "lib/deep/blob.bin")  # over an existing file
        assert t.fs_listdir("lib/deep") == ["blob.bin"]
        assert t.fs_read("lib/deep/blob.bin") == b"new"
        t.fs_remove("lib/deep/blob.bin")
        t.fs_remove("lib/deep/blob.bin", missing_ok=True)
        with pytest.raises(tr.BoardError, match="ENOENT"):
            t.fs_remove("lib/deep/blob.bin")
        with pytest.raises(tr.BoardError, match="writing nodir/x"):
            t.fs_put(b"x", "nodir/x")
    assert ("fs_writefile", "lib/deep/blob.bin", 256) in mp.instances[0].calls


def test_missing_port_lists_the_ports(mp, monkeypatch) -> None:
    monkeypatch.setattr(sp, "list_port_names", lambda: ["/dev/ttyUSB1"])
    with pytest.raises(
        tr.BoardNotFound, match=r"/dev/ttyUSB7 does not exist \(ports here: /dev/ttyUSB1"
    ):
        sp.SerialTransport("/dev/ttyUSB7")
    assert mp.instances == []


def test_busy_port(mp, port) -> None:
    mp.busy.add(port)
    with pytest.raises(tr.BoardBusy, match="another program"):
        sp.SerialTransport(port)


def test_no_repl_answer(mp, port, monkeypatch) -> None:
    def silent(self, soft_reset=True):
        raise TransportError("could not enter raw repl")

    monkeypatch.setattr(FakeMpremote, "enter_raw_repl", silent)
    with pytest.raises(tr.BoardError, match="is MicroPython flashed"):
        sp.SerialTransport(port)
    assert mp.instances[0].closed


def test_socket_url_goes_to_mpremote_untouched(mp) -> None:
    with sp.SerialTransport("socket://localhost:2217") as t:
        assert t.exec("print('hi')").strip() == "hi"
    assert mp.instances[0].device == "socket://localhost:2217"


def test_reset_is_a_hard_reset(mp, port) -> None:
    with sp.SerialTransport(port) as t:
        t.reset()
        fake = mp.instances[0]
        assert fake.calls[-1] == ("exec_raw_no_follow", "import machine\nmachine.reset()")


def test_open_transport_choices(tmp_path) -> None:
    t = tr.open_transport(board="virtual", board_dir=tmp_path / "vb", profile="esp32")
    assert isinstance(t, VirtualTransport)
    assert t.board.profile.heap_bytes == 100 * 1024
    with pytest.raises(tr.LinkError, match="not both"):
        tr.open_transport(port="/dev/x", board="virtual")
    with pytest.raises(tr.LinkError, match="no board given"):
        tr.open_transport()
    with pytest.raises(tr.LinkError, match="only 'virtual'"):
        tr.open_transport(board="esp32")


def fake_port(device, vid=None, pid=None, desc="", sn=None):
    return SimpleNamespace(device=device, vid=vid, pid=pid, description=desc, serial_number=sn)


def test_devices_guess_chips(monkeypatch, capsys) -> None:
    from serial.tools import list_ports

    from edgeloop import cli

    ports = [
        fake_port("/dev/ttyUSB0", 0x10C4, 0xEA60, "CP2102 USB to UART", "0001"),
        fake_port("/dev/ttyACM0", 0x303A, 0x1001, "USB JTAG/serial debug unit"),
        fake_port("/dev/ttyUSB1", 0x1A86, 0x7523, "USB2.0-Serial"),
        fake_port("/dev/ttyS0"),
        fake_port("/dev/ttyUSB2", 0x0403, 0x6001, "FT232R"),
    ]
    monkeypatch.setattr(list_ports, "comports", lambda: ports)
    monkeypatch.setattr(sys, "argv", ["edgeloop", "devices", "--json"])
    cli.main()
    found = {d["port"]: d for d in json.loads(capsys.readouterr().out)}
    assert "/dev/ttyS0" not in found
    assert found["/dev/ttyUSB0"]["bridge"] == "CP210x"
    assert found["/dev/ttyUSB0"]["chip_guess"].startswith("esp32 ")
    assert found["/dev/ttyUSB0"]["vid_pid"] == "10c4:ea60"
    assert found["/dev/ttyACM0"]["chip_guess"].startswith("esp32s3 or esp32c3")
    assert found["/dev/ttyUSB1"]["bridge"] == "CH340"
    assert found["/dev/ttyUSB2"]["bridge"].startswith("FTDI")


def test_deploy_over_serial_through_mpremote(mp, port, tmp_path, bundles) -> None:
    """The whole deploy over SerialTransport; the fake board runs the virtual board's code
    (x64, or x86 for a 32-bit build), so plan for it."""
    from edgeloop.boards import get_board
    from edgeloop.link import deploy as dp

    src = tmp_path / "m.elb"
    src.write_bytes(bundles[0])
    from dataclasses import replace

    from edgeloop.vboard import mpy_arch

    plan = dp.plan_deploy(src, replace(get_board("virtual"), mpy_arch=mpy_arch()), virtual=False,
                          config=dp.DEFAULT_DEVICE_CONFIG)
    assert "samples.s16" not in plan.files and not any(p.startswith("simhw/") for p in plan.files)
    with sp.SerialTransport(port) as t:
        first = dp.deploy(t, plan)
        again = dp.deploy(t, plan)
    assert first.verified and again.verified and again.copied == []
    writes = [c[1] for c in mp.instances[0].calls if c[0] == "fs_writefile"]
    assert "model.elb.tmp" in writes and "model.elb" not in writes  # only ever via rename
    assert all(w.endswith(".tmp") for w in writes)


def test_deploy_plans_the_boards_architecture(tmp_path, bundles) -> None:
    from edgeloop.boards import get_board
    from edgeloop.link import deploy as dp

    src = tmp_path / "m.elb"
    src.write_bytes(bundles[0])
    # mpy v6 header byte 2: arch << 2 (MP_NATIVE_ARCH_XTENSAWIN = 10, RV32IMC = 11)
    for name, arch_byte in (("esp32", 10), ("esp32s3", 10), ("esp32c3", 11)):
        plan = dp.plan_deploy(src, get_board(name), virtual=False, config=dp.DEFAULT_DEVICE_CONFIG)
        mpy = plan.files["elrt/kv_fc.mpy"]
        assert mpy[0] == ord("M") and mpy[2] >> 2 == arch_byte, (name, mpy[:4])
        assert plan.files["main.py"].startswith(b"#")  # main.py stays source


@pytest.mark.parametrize(
    "machine,profile",
    [
        ("ESP32S3 module with ESP32S3", "esp32s3"),
        ("ESP32C3 module with ESP32C3", "esp32c3"),
        ("Generic ESP32 module with ESP32", "esp32"),
    ],
)
def test_deploy_asks_the_board_what_it_is(monkeypatch, mp, port, machine, profile) -> None:
    from edgeloop.commands.boards import _profile_for

    with sp.SerialTransport(port) as t:
        monkeypatch.setattr(t, "eval", lambda expr, timeout=30.0: machine)
        assert _profile_for(t, None, virtual=False).name == profile
        assert _profile_for(t, "esp32c3", virtual=False).name == "esp32c3"  # the user decides


def test_deploy_refuses_an_unknown_board(mp, port) -> None:
    from edgeloop.commands.boards import _profile_for
    from edgeloop.errors import EdgeLoopError

    with sp.SerialTransport(port) as t:  # the fake board is the unix port: "x86_64"
        with pytest.raises(EdgeLoopError, match="give --board-profile esp32"):
            _profile_for(t, None, virtual=False)


def test_console_resets_and_yields_status_lines(mp, port) -> None:
    with sp.SerialTransport(port) as t:
        fake = mp.instances[0]
        fake.serial.incoming = (
            b"ets Jun  8 2016 00:22:57\r\n\xff\xfe\r\n"
            b'{"event": "start", "window": 256}\r\n{"w": 1, "cls": 0}\r\n{"w": 2'
        )
        lines = list(t.console(seconds=0.3))
        assert fake.calls[-1][0] == "exec_raw_no_follow"  # machine.reset() first
        assert fake.serial.timeout is not None
    assert lines[0].startswith("ets Jun")
    assert lines[2:] == ['{"event": "start", "window": 256}', '{"w": 1, "cls": 0}']


def test_deploy_checks_the_boards_mpy_before_copying(mp, port, tmp_path, bundles) -> None:
    from edgeloop.boards import get_board
    from edgeloop.link import deploy as dp
    from edgeloop.vboard import mpy_arch

    src = tmp_path / "m.elb"
    src.write_bytes(bundles[0])
    plan = dp.plan_deploy(src, get_board("esp32"), virtual=False, config=dp.DEFAULT_DEVICE_CONFIG)  # xtensawin files
    with sp.SerialTransport(port) as t:  # ... for a board running x64 code
        with pytest.raises(
            dp.DeployError, match=f"runs {mpy_arch()} code but the files were built for xtens"
        ):
            dp.deploy(t, plan)
    assert not any(c[0] == "fs_writefile" for c in mp.instances[0].calls)


@pytest.mark.parametrize("mpy,message", [(6 | 2 << 8 | 10 << 10, "6.2"), (-1, "cannot import")])
def test_old_firmware_is_refused(monkeypatch, tmp_path, mpy, message) -> None:
    from edgeloop.link import deploy as dp

    t = VirtualTransport(tmp_path / "vb")
    monkeypatch.setattr(t, "exec", lambda code, timeout=30.0: f"{mpy}\n")
    with pytest.raises(dp.DeployError, match=message):
        dp.check_board_mpy(t, "xtensawin")


def test_hil_on_a_real_board_keeps_the_users_model(mp, port, tmp_path, bundles) -> None:
    """`edgeloop hil` before it deploys: the board says what it is (probe_board), and a board
    holding another model is refused unless --replace-model; the same model, or an empty
    board, goes ahead."""
    from edgeloop.commands.hil import check_model_replacement, probe_board
    from edgeloop.errors import EdgeLoopError
    from edgeloop.vboard import identify

    facts = probe_board(port, 115200)
    ident = identify()
    assert (facts["mpy_arch"], facts["word_bits"], facts["float_bits"]) == (
        ident.mpy_arch, ident.word_bits, ident.float_bits)
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.elb").write_bytes(bundles[1])
    check_model_replacement(port, 115200, run, "esp32", allowed=False)  # nothing deployed yet
    mp.board_root.mkdir(parents=True, exist_ok=True)
    (mp.board_root / "model.elb").write_bytes(bundles[0])  # the user's own model
    with pytest.raises(EdgeLoopError, match="holds another model.*--replace-model"):
        check_model_replacement(port, 115200, run, "esp32", allowed=False)
    check_model_replacement(port, 115200, run, "esp32", allowed=True)
    (mp.board_root / "model.elb").write_bytes(bundles[1])
    check_model_replacement(port, 115200, run, "esp32", allowed=False)  # the run's own model
    assert (mp.board_root / "model.elb").read_bytes() == bundles[1]  # nothing was written


def test_no_repl_answer_keeps_stdout_clean(mp, port, monkeypatch, capsys) -> None:
    """mpremote print()s what it read before failing: `deploy --json` and `monitor` showed a
    stray b'' on stdout ahead of the error."""
    def garbled(self, soft_reset=True):
        print(b"")  # what mpremote's enter_raw_repl does on a silent port
        raise TransportError("could not enter raw repl")

    monkeypatch.setattr(FakeMpremote, "enter_raw_repl", garbled)
    with pytest.raises(tr.BoardError, match="is MicroPython flashed"):
        sp.SerialTransport(port)
    assert capsys.readouterr().out == ""
    def noise(self, soft_reset=True):
        print(b"\xff\xfe boot noise")
        raise TransportError("could not enter raw repl")

    monkeypatch.setattr(FakeMpremote, "enter_raw_repl", noise)
    with pytest.raises(tr.BoardError, match="it sent b'.xff.xfe boot noise'"):
        sp.SerialTransport(port)
    assert capsys.readouterr().out == ""


def test_stream_leaves_the_raw_repl_and_restarts_the_app(mp, port, monkeypatch) -> None:
    """The HIL link's wire on a real board: stream() hands the port over with main.py running
    (Ctrl-B leaves the raw REPL deploy used, Ctrl-D soft-reboots); a soft restart first sends the
    farewell (the HIL QUIT frame), a hard one pulses RTS (EN on ESP32 dev boards). Another
    script is started from the raw REPL."""
    monkeypatch.setattr(sp.time, "sleep", lambda s: None)
    with sp.SerialTransport(port) as t:
        fake = mp.instances[0]
        stream = t.stream()
        assert fake.serial.written[-1] == b"\r\x02\x04"
        assert stream.restart(farewell=b"QUIT") == "board soft reset (Ctrl-D)"
        assert fake.serial.written[-2:] == [b"QUIT", b"\r\x03\x03\x02\x04"]
        assert stream.restart(hard=True) == "board reset (RTS)"
        assert fake.serial.rts is False and fake.serial.dtr is False
        # another script on the board (edgeloop collect's) starts from the raw REPL
        t.stream("collect_run.py")
        assert fake.calls[-1] == ("exec_raw_no_follow", "exec(open('collect_run.py').read())")
    # without the raw REPL (the HIL bench) nothing interrupts the running app
    with sp.SerialTransport(port, raw_repl=False) as t:
        fake = mp.instances[-1]
        t.stream()
        assert fake.calls == [] and fake.serial.written == []
