"""The sensor twins the CLI hands to the board link (edgeloop.link knows only their interface).

The virtual board's standalone app plays a recording through its simulated sensor; the demo
and the HIL bench run twins live against the board. The twins themselves live in trainer.twins.
"""

from __future__ import annotations

from typing import Any


def rotating_machine(seed: int = 0, **kw: Any) -> Any:
    """The rotating-machine twin (trainer.twins.RotatingMachine)."""
    from trainer.twins import RotatingMachine

    return RotatingMachine(seed=seed, **kw)


def machine_recording(
    units: float, sample_rate: float = 1000.0, seconds: float = 20.0, fault_at_s: float = 10.0
) -> bytes:
    """The rotating-machine twin, healthy then with a bearing fault, as the simulated sensor's
    sample file (seeded): what `edgeloop deploy --board virtual` gives the standalone app."""
    from edgeloop.link.deploy import sim_samples_bytes

    twin = rotating_machine(seed=0, sample_rate=sample_rate)
    twin.inject_fault("bearing", at_s=fault_at_s)
    return sim_samples_bytes(twin.step(int(seconds * sample_rate)), units)
