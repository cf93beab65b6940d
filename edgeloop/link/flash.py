"""Write a MicroPython firmware image to an ESP32-family board with esptool's Python API.

The user brings the .bin (the firmware is never downloaded here). Before esptool touches the
flash we check what can be checked on the host: the port exists, the file is an ESP image (magic
0xE9 at its start: a MicroPython .bin starts with the second-stage bootloader), the image's chip
id matches the chip on the port. The offset comes from the board profile (0x1000 on ESP32, 0x0 on
ESP32-S3 and ESP32-C3). esptool prints its own progress bar while writing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edgeloop.boards import BOARDS, BoardProfile
from edgeloop.errors import EdgeLoopError
from edgeloop.link.serialport import list_port_names
from edgeloop.link.transport import BoardBusy, BoardNotFound

ESP_IMAGE_MAGIC = 0xE9
PARTITION_TABLE_ADDR = 0x8000
PARTITION_MAGIC = b"\xaa\x50"
# esptool CHIP_NAME -> our profile name; image header chip ids (esp_image_header_t.chip_id)
CHIP_NAMES = {"ESP32": "esp32", "ESP32-S3": "esp32s3", "ESP32-C3": "esp32c3"}
IMAGE_CHIP_IDS = {
    0: "esp32",
    2: "esp32s2",
    5: "esp32c3",
    9: "esp32s3",
    12: "esp32c2",
    13: "esp32c6",
    16: "esp32h2",
}
CHOICES = ("auto", "esp32", "esp32s3", "esp32c3")


class FlashError(EdgeLoopError):
    pass


class ChipMismatch(FlashError):
    pass


class NotFirmwareImage(FlashError):
    pass


@dataclass
class FlashPlan:
    port: str
    chip: str  # profile name: esp32, esp32s3, esp32c3
    offset: int
    firmware: Path
    erase: bool
    baud: int

    def esptool_args(self) -> list[str]:
        args = ["--chip", self.chip, "--port", self.port, "--baud", str(self.baud), "write-flash"]
        if self.erase:
            args.append("--erase-all")
        return [*args, hex(self.offset), str(self.firmware)]


def image_chip(firmware: Path) -> str | None:
    """The chip a firmware image is built for (from its header), refusing non-images."""
    firmware = Path(firmware)
    if not firmware.is_file():
        raise FlashError(f"firmware file {firmware} does not exist")
    head = firmware.read_bytes()[:24]
    if head[:4] == b"UF2\n":
        raise NotFirmwareImage(
            f"{firmware} is a UF2 file (for drag-and-drop boards); esptool needs the .bin image"
        )
    if head[:4] == b"\x7fELF":
        raise NotFirmwareImage(f"{firmware} is an ELF file; give the .bin image MicroPython ships")
    if len(head) < 24 or head[0] != ESP_IMAGE_MAGIC:
        found = f"0x{head[0]:02X}" if head else "an empty file"
        raise NotFirmwareImage(
            f"{firmware} is not an ESP firmware image: expected magic 0xE9 at offset 0, found "
            f"{found} (download the .bin for your board from micropython.org/download)"
        )
    chip = IMAGE_CHIP_IDS.get(int.from_bytes(head[12:14], "little"))
    profile = BOARDS.get(chip or "")
    if profile is not None and profile.firmware_offset is not None:
        # The full MicroPython image holds the partition table at flash 0x8000; an application
        # image alone (also 0xE9) written at the bootloader's offset would leave no bootable board.
        at = PARTITION_TABLE_ADDR - profile.firmware_offset
        with open(firmware, "rb") as f:
            f.seek(at)
            if f.read(2) != PARTITION_MAGIC:
                raise NotFirmwareImage(
                    f"{firmware} has no partition table at file offset {hex(at)}: it looks like an "
                    "application image only; use the full firmware .bin from micropython.org"
                )
    return chip


def _check_port(port: str) -> None:
    if "://" not in port and not os.path.exists(port):
        known = ", ".join(list_port_names()) or "none found"
        raise BoardNotFound(
            f"serial port {port} does not exist (ports here: {known}; see `edgeloop devices`)"
        )


def _serial_error(port: str, exc: Exception) -> EdgeLoopError:
    text = str(exc)
    if "busy" in text.lower() or "Errno 16" in text or "exclusively lock" in text:
        return BoardBusy(
            f"serial port {port} is busy: close other programs using it (serial monitor, "
            f"mpremote, another esptool) and retry ({text})"
        )
    if "Permission denied" in text or "Errno 13" in text:
        return BoardBusy(
            f"no permission to open {port} (Linux: add yourself to the 'dialout' group, then "
            "log in again)"
        )
    if "No such file" in text or "Errno 2" in text:
        return BoardNotFound(f"serial port {port} disappeared (board unplugged?)")
    return FlashError(f"serial error on {port}: {text}")


def detect_chip(port: str, baud: int = 115200) -> str:
    """Connect to the ROM bootloader and return the chip's profile name."""
    import esptool.cmds
    import serial
    from esptool.util import FatalError

    try:
        esp = esptool.cmds.detect_chip(port, baud)
    except serial.SerialException as exc:
        raise _serial_error(port, exc) from exc
    except FatalError as exc:
        raise FlashError(
            f"could not talk to the bootloader on {port}: {exc} (hold BOOT while pressing EN/RST "
            "to force download mode)"
        ) from exc
    try:
        name = esp.CHIP_NAME
    finally:
        port_obj = getattr(esp, "_port", None)
        if port_obj is not None:
            port_obj.close()
    if name not in CHIP_NAMES:
        raise FlashError(
            f"the board on {port} is an {name}; EdgeLoop supports " + ", ".join(CHIP_NAMES)
        )
    return CHIP_NAMES[name]


def plan_flash(
    port: str,
    firmware: Path,
    chip: str = "auto",
    erase: bool = False,
    baud: int = 460800,
) -> FlashPlan:
    """Check everything that can be checked, detect the chip, and decide esptool's arguments."""
    if chip not in CHOICES:
        raise FlashError(f"--chip {chip!r}: choose one of {', '.join(CHOICES)}")
    built_for = image_chip(Path(firmware))
    _check_port(port)
    detected = detect_chip(port)
    if chip != "auto" and chip != detected:
        raise ChipMismatch(f"--chip {chip} was given but the board on {port} is an {detected}")
    if built_for is not None and built_for != detected:
        raise ChipMismatch(
            f"{firmware} is built for {built_for} but the board on {port} is an {detected}: "
            f"download the {detected.upper()} firmware"
        )
    profile: BoardProfile = BOARDS[detected]
    assert profile.firmware_offset is not None
    return FlashPlan(port, detected, profile.firmware_offset, Path(firmware), erase, baud)


def run_flash(plan: FlashPlan) -> None:
    """Hand the plan to esptool (it shows progress); its failures become FlashError."""
    import esptool
    import serial
    from esptool.util import FatalError

    try:
        esptool.main(plan.esptool_args())
    except serial.SerialException as exc:
        raise _serial_error(plan.port, exc) from exc
    except FatalError as exc:
        text = str(exc)
        if "Wrong --chip" in text or "This chip is" in text:
            raise ChipMismatch(f"esptool: {text}") from exc
        raise FlashError(f"esptool failed writing {plan.firmware} to {plan.port}: {text}") from exc
    except SystemExit as exc:  # click usage errors inside esptool
        raise FlashError(
            f"esptool refused the arguments {plan.esptool_args()}: exit {exc.code}"
        ) from exc


def flash(
    port: str, firmware: Path, chip: str = "auto", erase: bool = False, baud: int = 460800
) -> FlashPlan:
    plan = plan_flash(port, firmware, chip, erase, baud)
    run_flash(plan)
    return plan
