"""Find serial ports that look like ESP32 boards, with a guess of the chip from the USB bridge.

A USB-UART bridge (CP210x, CH340, FTDI) says nothing certain about the chip behind it (most
ESP32 DevKits use one); Espressif's native USB (303a:1001) exists only on the S3, C3 and newer.
The guess is a hint for `--board-profile`; `edgeloop flash` detects the chip for real.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# (vid, pid) -> (bridge, chip guess)
USB_IDS: dict[tuple[int, int], tuple[str, str]] = {
    (0x10C4, 0xEA60): ("CP210x", "esp32 (CP210x bridge; DevKitC and most ESP32 boards)"),
    (0x10C4, 0xEA70): ("CP2105", "esp32 (CP2105 bridge)"),
    (0x1A86, 0x7523): ("CH340", "esp32 (CH340 bridge)"),
    (0x1A86, 0x55D4): ("CH9102", "esp32 (CH9102 bridge)"),
    (0x1A86, 0x55D3): ("CH343", "esp32 or esp32s3 (CH343 bridge)"),
    (0x0403, 0x6001): ("FTDI FT232R", "esp32 (FTDI bridge)"),
    (0x0403, 0x6010): ("FTDI FT2232", "esp32 (FTDI bridge, e.g. ESP-WROVER-KIT)"),
    (0x0403, 0x6015): ("FTDI FT-X", "esp32 (FTDI bridge)"),
    (0x303A, 0x1001): ("Espressif USB-Serial/JTAG", "esp32s3 or esp32c3 (native USB)"),
    (0x303A, 0x4001): ("Espressif TinyUSB CDC", "esp32s3 (MicroPython native USB CDC)"),
}


@dataclass
class Device:
    port: str
    description: str
    vid_pid: str | None
    bridge: str | None
    chip_guess: str | None
    serial_number: str | None

    def to_json(self) -> dict:
        return asdict(self)


def guess(vid: int | None, pid: int | None) -> tuple[str | None, str | None]:
    if vid is None or pid is None:
        return None, None
    if (vid, pid) in USB_IDS:
        return USB_IDS[(vid, pid)]
    if vid == 0x303A:
        return "Espressif USB", "esp32s3 or esp32c3 (native USB)"
    return None, None


def list_devices(all_ports: bool = False) -> list[Device]:
    """Serial ports, ESP-looking ones first; others only with all_ports (e.g. ttyS*)."""
    from serial.tools import list_ports

    found = []
    for p in sorted(list_ports.comports(), key=lambda p: p.device):
        bridge, chip = guess(p.vid, p.pid)
        if bridge is None and not all_ports and p.vid is None:
            continue  # built-in UARTs without USB ids (ttyS0...) are never boards
        vid_pid = f"{p.vid:04x}:{p.pid:04x}" if p.vid is not None and p.pid is not None else None
        found.append(Device(p.device, p.description or "", vid_pid, bridge, chip, p.serial_number))
    return found


def profile_from_board(transport) -> str | None:
    """The board profile name a running MicroPython board says it is (os.uname().machine,
    e.g. "ESP32S3 module with ESP32S3"); None when it does not say."""
    from edgeloop.link.transport import BoardError

    try:
        machine = str(transport.eval("__import__('os').uname().machine")).upper()
    except BoardError:
        return None
    for key, name in (("ESP32S3", "esp32s3"), ("ESP32C3", "esp32c3"), ("ESP32", "esp32")):
        if key in machine.replace("-", ""):
            return name
    return None
