"""`edgeloop flash` at the esptool boundary: arguments, offsets, checks and error messages."""

from __future__ import annotations

import sys
from pathlib import Path

import esptool
import esptool.cmds
import pytest
import serial
from esptool.util import FatalError

from edgeloop.link import flash as fl
from edgeloop.link.transport import BoardBusy, BoardNotFound


class FakeLoader:
    def __init__(self, name: str) -> None:
        self.CHIP_NAME = name
        self.closed = False
        self._port = self

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def port(tmp_path: Path) -> str:
    p = tmp_path / "ttyUSB0"  # an existing path plays the serial device node
    p.write_text("")
    return str(p)


@pytest.fixture
def esp(monkeypatch: pytest.MonkeyPatch) -> dict:
    """Stand-ins for esptool's API: the chip on the port and a recorder of esptool.main calls."""
    state: dict = {"chip": "ESP32", "calls": [], "detect": [], "loaders": []}

    def detect_chip(port: str, baud: int = 115200, **kw: object) -> FakeLoader:
        state["detect"].append((port, baud))
        loader = FakeLoader(state["chip"])
        state["loaders"].append(loader)
        return loader

    def main(argv: list[str] | None = None, esp: object = None) -> None:
        state["calls"].append(list(argv or []))
        if "raise" in state:
            raise state["raise"]

    monkeypatch.setattr(esptool.cmds, "detect_chip", detect_chip)
    monkeypatch.setattr(esptool, "main", main)
    return state


def write(tmp_path: Path, data: bytes, name: str = "fw.bin") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize(
    "chip_name,profile,chip_id,offset",
    [
        ("ESP32", "esp32", 0, "0x1000"),
        ("ESP32-S3", "esp32s3", 9, "0x0"),
        ("ESP32-C3", "esp32c3", 5, "0x0"),
    ],
)
def test_auto_detects_chip_and_uses_its_offset(
    esp_image, tmp_path, port, esp, chip_name, profile, chip_id, offset
) -> None:
    esp["chip"] = chip_name
    fw = write(tmp_path, esp_image(chip_id))
    plan = fl.flash(port, fw, chip="auto", erase=False, baud=921600)
    assert plan.chip == profile
    assert esp["calls"] == [
        ["--chip", profile, "--port", port, "--baud", "921600", "write-flash", offset, str(fw)]
    ]
    assert esp["loaders"][0].closed  # the detection connection is released before esptool runs


def test_erase_and_explicit_chip(esp_image, tmp_path, port, esp) -> None:
    fw = write(tmp_path, esp_image(0))
    fl.flash(port, fw, chip="esp32", erase=True)
    assert esp["calls"] == [
        [
            "--chip",
            "esp32",
            "--port",
            port,
            "--baud",
            "460800",
            "write-flash",
            "--erase-all",
            "0x1000",
            str(fw),
        ]
    ]


def test_chip_mismatch_given_vs_detected(esp_image, tmp_path, port, esp) -> None:
    esp["chip"] = "ESP32"
    with pytest.raises(
        fl.ChipMismatch, match="--chip esp32s3 was given but the board .* is an esp32"
    ):
        fl.flash(port, write(tmp_path, esp_image(9)), chip="esp32s3")
    assert esp["calls"] == []


def test_image_for_another_chip_is_refused(esp_image, tmp_path, port, esp) -> None:
    esp["chip"] = "ESP32"
    with pytest.raises(fl.ChipMismatch, match="built for esp32c3 but the board .* is an esp32"):
        fl.flash(port, write(tmp_path, esp_image(5)))
    assert esp["calls"] == []


@pytest.mark.parametrize(
    "data,message",
    [
        (
            b"<html>404 Not Found</html>" + bytes(100),
            "not an ESP firmware image: expected magic 0xE9",
        ),
        (b"", "not an ESP firmware image"),
        (b"UF2\n" + bytes(100), "UF2 file"),
        (b"\x7fELF" + bytes(100), "ELF file"),
    ],
)
def test_not_a_firmware_image(tmp_path, port, esp, data, message) -> None:
    with pytest.raises(fl.NotFirmwareImage, match=message):
        fl.flash(port, write(tmp_path, data))
    assert esp["detect"] == [] and esp["calls"] == []


def test_application_image_alone_is_refused(esp_image, tmp_path, port, esp) -> None:
    fw = write(tmp_path, esp_image(0, partition_table=False))
    with pytest.raises(fl.NotFirmwareImage, match="no partition table at file offset 0x7000"):
        fl.flash(port, fw)
    assert esp["calls"] == []


def test_missing_firmware_file(tmp_path, port, esp) -> None:
    with pytest.raises(fl.FlashError, match="does not exist"):
        fl.flash(port, tmp_path / "nope.bin")


def test_missing_port(esp_image, tmp_path, esp) -> None:
    with pytest.raises(BoardNotFound, match="serial port /dev/ttyNOPE0 does not exist"):
        fl.flash("/dev/ttyNOPE0", write(tmp_path, esp_image(0)))
    assert esp["detect"] == []


def test_busy_port(esp_image, tmp_path, port, esp, monkeypatch) -> None:
    def busy(port: str, baud: int = 115200, **kw: object) -> None:
        raise serial.SerialException(
            f"[Errno 16] could not open port {port}: Device or resource busy"
        )

    monkeypatch.setattr(esptool.cmds, "detect_chip", busy)
    with pytest.raises(BoardBusy, match="is busy: close other programs"):
        fl.flash(port, write(tmp_path, esp_image(0)))


def test_unsupported_chip(esp_image, tmp_path, port, esp) -> None:
    esp["chip"] = "ESP8266"
    with pytest.raises(fl.FlashError, match="is an ESP8266; EdgeLoop supports ESP32"):
        fl.flash(port, write(tmp_path, esp_image(0)))


def test_no_bootloader_answer(esp_image, tmp_path, port, esp, monkeypatch) -> None:
    def silent(port: str, baud: int = 115200, **kw: object) -> None:
        raise FatalError("Failed to connect to Espressif device: No serial data received.")

    monkeypatch.setattr(esptool.cmds, "detect_chip", silent)
    with pytest.raises(fl.FlashError, match="hold BOOT while pressing EN"):
        fl.flash(port, write(tmp_path, esp_image(0)))


def test_esptool_failure_mapped(esp_image, tmp_path, port, esp) -> None:
    esp["raise"] = FatalError("Failed to write compressed data to flash after seq 3")
    with pytest.raises(fl.FlashError, match="esptool failed writing .* after seq 3"):
        fl.flash(port, write(tmp_path, esp_image(0)))


def test_cli_prints_one_line_error(tmp_path, esp, monkeypatch, capsys) -> None:
    from edgeloop import cli

    fw = write(tmp_path, b"not firmware" * 10)
    monkeypatch.setattr(
        sys, "argv", ["edgeloop", "flash", "--port", "/dev/x", "--firmware", str(fw)]
    )
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "not an ESP firmware image" in err and "Traceback" not in err


def test_cli_flashes(esp_image, tmp_path, port, esp, monkeypatch, capsys) -> None:
    from edgeloop import cli

    esp["chip"] = "ESP32-S3"
    fw = write(tmp_path, esp_image(9))
    monkeypatch.setattr(
        sys,
        "argv",
        ["edgeloop", "flash", "--port", port, "--firmware", str(fw), "--baud", "115200"],
    )
    cli.main()  # returns normally on success
    assert esp["calls"][0][-2:] == ["0x0", str(fw)]
    assert "at 0x0" in capsys.readouterr().out
