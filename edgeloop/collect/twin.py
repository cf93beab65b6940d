"""What the virtual board's simulated chips play: a sensor twin held in one state.

The twin writes its samples in the sensor's own counts (the file the simulated chips read,
edgeloop.link.deploy.sim_samples_bytes), so the driver on the board reads back exactly what
the twin made, at register level, on the sensor's own clock.
"""

from __future__ import annotations

import numpy as np

from edgeloop.collect.errors import CollectError

# what people call a twin's states besides its own class names
_HEALTHY = ("healthy", "normal", "ok", "good")


def states(twin: str) -> tuple[str, ...]:
    from trainer.twins import TWINS

    if twin not in TWINS:
        raise CollectError(f"unknown twin {twin!r}; known: {', '.join(TWINS)}")
    return TWINS[twin][1]


def resolve_state(twin: str, state: str) -> str:
    """The twin's class for `state`: its own name, `healthy` for the healthy class, or
    `<fault>_fault` (bearing_fault -> bearing)."""
    known = states(twin)
    s = state.strip().lower().replace("-", "_")
    if s in known:
        return s
    if s in _HEALTHY and known[0] in _HEALTHY:
        return known[0]
    if s.endswith("_fault") and s[: -len("_fault")] in known:
        return s[: -len("_fault")]
    raise CollectError(f"twin {twin!r} has no state {state!r}; its states: {', '.join(known)}"
                       + (f" ({known[0]} also as 'healthy', a fault X as 'X_fault')"
                          if known[0] in _HEALTHY else ""))


def twin_samples(twin: str, state: str, seconds: float, rate: float,
                 channels: tuple[str, ...], counts_per_unit: float | tuple[float, ...],
                 seed: int = 0) -> bytes:
    """`seconds` of the twin in `state` at `rate`, as the simulated sensors' sample file: int16
    in the run's counts, the run's channels in order."""
    from edgeloop.link.deploy import sim_samples_bytes
    from trainer.twins import TWINS

    cls = TWINS[twin][0]
    cond = resolve_state(twin, state)
    rec = cls.recording(cond, seconds, seed, sample_rate=rate)
    missing = [c for c in channels if c not in rec.channels]
    if missing:
        raise CollectError(f"twin {twin!r} gives channels {', '.join(rec.channels)}, not "
                           f"{', '.join(missing)}: choose the twin that matches the config")
    x = rec.data[:, [list(rec.channels).index(c) for c in channels]]
    cpu = np.broadcast_to(np.asarray(counts_per_unit, np.float64), (len(channels),))
    return sim_samples_bytes(x, cpu)
