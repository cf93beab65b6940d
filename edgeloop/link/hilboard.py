"""A board ready for a HIL session: the device config for HIL mode and a virtual-board deploy."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def hil_config(base: dict | None, input_mode: str = "frames", **hil: Any) -> dict:
    """A device config for HIL mode from the run's config (window, preprocess, decision...)."""
    cfg = dict(base or {})
    cfg["mode"] = "hil"
    dec = dict(cfg.get("decision", {}))
    if "fault_classes" in dec and "alarm_classes" not in dec:  # trainer's name for them
        dec["alarm_classes"] = dec["fault_classes"]
    dec.setdefault("latch", True)  # a stopped machine stays stopped until re-armed
    cfg["decision"] = dec
    h = dict(cfg.get("hil", {}))
    h["input"] = input_mode
    h.update(hil)
    cfg["hil"] = h
    if input_mode == "i2c":
        sensor = dict(cfg.get("sensor", {}))
        sensor.setdefault("kind", "mpu6050")
        sensor["range_g"] = int(sensor.get("range_g", 16))
        cfg["sensor"] = sensor
    return cfg


def deploy_virtual(
    source: Path | str, board_dir: Path | str, config: dict, profile: str = "virtual",
    verify: bool = False,
) -> Path:
    """Deploy a run folder / bundle into a virtual board folder with a HIL config."""
    from edgeloop.boards import get_board
    from edgeloop.link.deploy import deploy, plan_deploy
    from edgeloop.link.virtual import VirtualTransport

    prof = get_board(profile)
    plan = plan_deploy(Path(source), prof, virtual=True, config=config)
    transport = VirtualTransport(board_dir, prof)
    deploy(transport, plan, verify=verify)
    return transport.root

