"""From CLI choices to a running collect script: the sensor config, the board, the twin.

The sensor comes from an edgeloop.toml ([[sensors]], or [sensor] for a lone accelerometer):
the user's own (`--config`), else the twin's example project. `--board virtual` plays the twin
in the chosen state through the simulated chips; `--port` is a real board (a serial port or a
socket:// URL), which gets the firmware copied first where it differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgeloop.collect.board import CollectLink, board_config, prepare_board, prepare_virtual
from edgeloop.collect.errors import CollectError
from edgeloop.collect.twin import resolve_state, states, twin_samples

DEFAULT_VIRTUAL_DIR = Path("build") / "vboard" / "collect"  # never a deployed app's folder


@dataclass(frozen=True)
class Source:
    """Where the samples come from (the CLI's board options)."""

    board: str | None = None  # "virtual"
    port: str | None = None  # /dev/ttyUSB0, COM3, socket://host:port
    baud: int = 115200
    profile: str | None = None
    board_dir: Path | None = None
    twin: str = "rotating_machine"
    state: str | None = None
    seed: int = 0

    @property
    def virtual(self) -> bool:
        return self.port is None and self.board == "virtual"

    def check(self) -> None:
        if self.port and self.board:
            raise CollectError("give either --port (a real board) or --board virtual, not both")
        if not self.port and self.board != "virtual":
            raise CollectError("no board given: --board virtual, or --port PORT (see "
                               "`edgeloop devices`; socket://host:port works too)"
                               if self.board is None else
                               f"--board {self.board!r}: only 'virtual' is a board without a "
                               "port; for a real board give --port")
        if self.virtual:
            resolve_state(self.twin, self.state_name)

    @property
    def state_name(self) -> str:
        """The twin state asked for; the twin's first (its healthy or resting one) by default."""
        return self.state or states(self.twin)[0]

    def describe(self) -> str:
        if self.virtual:
            return f"virtual board ({self.twin}, {self.state_name})"
        return f"board on {self.port}"


def load_sensor_config(config: Path | None, twin: str):
    """The trainer Config whose sensor part is collected: --config, else the twin's example."""
    from edgeloop.resources import example_config
    from trainer.config import load_config
    from trainer.errors import TrainerError

    try:
        return load_config(config if config is not None else example_config(twin))
    except TrainerError as exc:
        raise CollectError(str(exc)) from None


def sensor_part(cfg) -> dict:
    """The sensor keys of a device config (what app.Hardware reads) for this Config."""
    cpu = cfg.counts_per_unit
    part: dict = {"channels": list(cfg.channels), "sample_rate": cfg.sample_rate,
                  "counts_per_unit": list(cpu) if isinstance(cpu, tuple) else cpu}
    if cfg.sensors:
        part["sensors"] = [s.to_device(cfg.sample_rate) for s in cfg.sensors]
    else:  # one accelerometer declared by [sensor] alone: the app's default MPU6050
        part["sensor"] = {"kind": "mpu6050"}
    return part


def open_board(src: Source, cfg, sample_seconds: float,
               loop: bool = False) -> tuple[CollectLink, dict]:
    """The running collect script and what to record about the board in each recording's
    json. The virtual board's chips get `sample_seconds` of the twin (a longer session ends
    with the twin's samples: its end is reported, never padded; `loop` plays them again)."""
    transport, meta = prepare(src, cfg, sample_seconds, loop)
    return CollectLink.open(transport), meta


def prepare(src: Source, cfg, sample_seconds: float, loop: bool = False,
            board_extra: dict | None = None, replay: bool = False):
    """The board's Transport with the collect script and its config in place, and the board's
    facts for the recordings' json. `board_extra` adds keys to collect.json (tests:
    "heap_lock", "stall"); `replay` runs the virtual board's chips as fast as they are drained
    (no clock: the link's throughput, link tests that must not depend on the machine's load)."""
    from edgeloop.boards import get_board
    from edgeloop.link.transport import open_transport

    src.check()
    part = sensor_part(cfg) | dict(board_extra or {})
    if src.virtual:
        from edgeloop.link.virtual import VirtualTransport

        profile = get_board(src.profile or "virtual")
        root = Path(src.board_dir) if src.board_dir else DEFAULT_VIRTUAL_DIR / profile.name
        state = src.state_name
        samples = twin_samples(src.twin, state, sample_seconds, cfg.sample_rate, cfg.channels,
                               cfg.counts_per_unit, src.seed)
        prepare_virtual(root, board_config(part, virtual=True, replay=replay, loop=loop),
                        samples)
        transport = VirtualTransport(root, profile)
        meta = {"board": "virtual", "twin": src.twin, "state": resolve_state(src.twin, state),
                "seed": src.seed, "clock": "replay" if replay else "wall"}
    else:
        transport = open_transport(src.port, None, None, src.profile, src.baud)
        try:
            arch = _board_arch(transport, src.profile)
            prepare_board(transport, arch, board_config(part, virtual=False))
        except BaseException:
            transport.close()
            raise
        meta = {"board": src.port, "baud": src.baud}
    return transport, meta


def _board_arch(transport, profile: str | None) -> str:
    """The .mpy arch of a real board: its profile's, the profile asked from the board if none."""
    from edgeloop.boards import get_board
    from edgeloop.link.devices import profile_from_board

    name = profile or profile_from_board(transport)
    if name is None:
        raise CollectError("could not tell which board is on the port: give --board-profile "
                           "esp32|esp32s3|esp32c3")
    return get_board(name).mpy_arch


def probe_virtual(src: Source, cfg, samples: int = 5000) -> tuple[float, float]:
    """The virtual board's own link budget: it has no baud, so what limits a stream is how fast
    its collect loop moves samples. Measured with the simulated chip in replay (as fast as
    drained), in a folder of its own: (samples a second, bytes a second)."""
    import time

    from edgeloop.collect import wire

    root = (Path(src.board_dir) if src.board_dir else DEFAULT_VIRTUAL_DIR / "virtual")
    probe = Source(board="virtual", board_dir=root.with_name(root.name + "-probe"),
                   twin=src.twin, state=src.state, seed=src.seed)
    transport, _ = prepare(probe, cfg, samples / cfg.sample_rate + 1.0, replay=True)
    link = CollectLink.open(transport)
    n, t0, t1, b0, b1 = 0, 0.0, 0.0, 0, 0
    try:
        link.send(wire.Op.STREAM)
        for msg in link.messages(silence=5.0):
            if isinstance(msg, wire.Data):
                if not n:
                    t0, b0 = time.monotonic(), link.link.bytes_in
                n += len(msg.samples)
                t1, b1 = time.monotonic(), link.link.bytes_in
                if n >= samples:
                    break
            elif isinstance(msg, wire.Refused):
                break
    finally:
        link.close()
    if n < 2 or t1 <= t0:
        raise CollectError("the virtual board's throughput probe got no samples")
    return n / (t1 - t0), (b1 - b0) / (t1 - t0)
