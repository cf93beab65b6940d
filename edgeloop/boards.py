"""Board profiles: the one place that says what each supported board is.

Every other module (converter fit checks, mpy-cross, flashing, the virtual board's heap limit,
the HIL bench) reads its board facts from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class BoardProfile:
    """What EdgeLoop needs to know about one kind of board."""

    name: str
    chip: str  # esptool chip name, or "virtual"
    mpy_arch: str  # mpy-cross -march value
    heap_bytes: int  # GC heap free for the application after MicroPython boots
    firmware_offset: int | None  # flash offset of the MicroPython image (None: not flashable)
    psram: bool = False
    word_bits: int = 32  # viper int width on this board
    float_bits: int = 32  # MicroPython float width on this board
    pins: dict[str, int] = field(default_factory=dict)  # default I2C/relay/LED/ADC pins
    description: str = ""
    output_gpios: tuple[int, ...] = ()  # GPIOs that can drive a relay/LED (empty: not checked)

    @property
    def flashable(self) -> bool:
        return self.firmware_offset is not None


BOARDS: dict[str, BoardProfile] = {
    "esp32": BoardProfile(
        name="esp32",
        chip="esp32",
        mpy_arch="xtensawin",
        heap_bytes=100 * 1024,
        firmware_offset=0x1000,
        pins={"sda": 21, "scl": 22, "relay": 26, "led": 2, "adc": 34},
        description="ESP32 (WROOM/WROVER without PSRAM), ~100 KB free heap",
        # 6-11 are the SPI flash's, 34-39 are inputs only
        output_gpios=(0, 1, 2, 3, 4, 5, *range(12, 20), *range(21, 24), 25, 26, 27, 32, 33),
    ),
    "esp32s3": BoardProfile(
        name="esp32s3",
        chip="esp32s3",
        mpy_arch="xtensawin",
        heap_bytes=2 * 1024 * 1024,
        firmware_offset=0x0,
        psram=True,
        pins={"sda": 8, "scl": 9, "relay": 5, "led": 48, "adc": 1},
        description="ESP32-S3 with PSRAM, ~2 MB heap",
        # 26-32 are the SPI flash's (and 33-37 the octal PSRAM's on N8R8/N16R8 modules)
        output_gpios=(*range(0, 22), *range(33, 49)),
    ),
    "esp32c3": BoardProfile(
        name="esp32c3",
        chip="esp32c3",
        mpy_arch="rv32imc",
        heap_bytes=120 * 1024,
        firmware_offset=0x0,
        pins={"sda": 8, "scl": 9, "relay": 4, "led": 7, "adc": 2},
        description="ESP32-C3 (RISC-V), ~120 KB free heap",
        output_gpios=(*range(0, 11), *range(18, 22)),  # 11-17 are the SPI flash's
    ),
    "virtual": BoardProfile(
        name="virtual",
        chip="virtual",
        mpy_arch="x64",  # the PyPI port's; code is built for vboard.identify()'s arch
        heap_bytes=100 * 1024,
        firmware_offset=None,
        word_bits=64,
        float_bits=64,
        pins={"sda": 21, "scl": 22, "relay": 26, "led": 2, "adc": 34},
        description="MicroPython unix port on this machine, heap limited like an ESP32",
    ),
}


# What the simulated hardware takes of a virtual board's heap and a real board never loads
# (firmware_micropython/simhw/: the clocked MPU6050 and its FIFO, the bus, pins and the
# sample-file reader): ~12 KB on the 64-bit unix port, about 40 % less on a 32-bit one (the
# room's SHT3x + SCD4x world: 12.2 KB of modules + 3.6 KB of objects on the 32-bit esp32sem).
SIM_HEAP = 12 * 1024


def with_sim_heap(profile: BoardProfile, extra: int = 0) -> BoardProfile:
    """The profile with the simulated chips' heap share added: a virtual board that plays its
    sensors at register level gets the board's heap for the firmware, plus SIM_HEAP (plus
    `extra` for other simulation-only modules a scenario loads)."""
    return replace(profile, heap_bytes=profile.heap_bytes + SIM_HEAP + extra)


class UnknownBoardError(ValueError):
    pass


def get_board(name: str) -> BoardProfile:
    """Look a profile up by name, with an error that lists the known ones."""
    try:  # `ESP32-S3`, `esp32_c3`: spelled as on the chip or as people type it
        return BOARDS[name.strip().lower().replace("-", "").replace("_", "")]
    except KeyError:
        known = ", ".join(sorted(BOARDS))
        raise UnknownBoardError(f"unknown board profile {name!r}; known profiles: {known}") from None
