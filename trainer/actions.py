"""What the board does with its decisions: the `[[actions]]` list of edgeloop.toml, checked here
and written to config.json "actions" (run by firmware_micropython/actions.py).

    [[actions]]                       # a machine: stop it (relay, latched)
    kind = "stop"; classes = ["bearing", ...]; n = 3; m = 5; threshold = 0.8; pin = 26
    [[actions]]                       # a wearable: one alert per fall (LED/buzzer + event)
    kind = "alert"; name = "fall_alert"; classes = ["fall"]; hold_off_s = 30; pin = 2
    [[actions]]                       # a building: an output with hysteresis on one channel
    kind = "control"; name = "heating"; channel = "temperature"; on_below = 20.5
    off_above = 21.5; min_on_s = 600; min_off_s = 600; force_off = ["window_open"]
    fault_after_s = 2700; fault_min_change = 0.3; pin = 25

classes / force_on / force_off name classes; n, m, threshold default to [decision]'s.
Thresholds of a control are in the channel's unit (degC, ppm); the board compares counts.
"""

from __future__ import annotations

from typing import Any

from trainer.errors import TrainerError

KINDS = ("stop", "alert", "control")
_KEYS: dict[str, tuple[type, ...]] = {
    "kind": (str,), "name": (str,), "classes": (list,), "n": (int,), "m": (int,),
    "threshold": (int, float), "hold_off_s": (int, float), "pin": (int,),
    "active_high": (bool,), "channel": (str,), "on_below": (int, float),
    "off_above": (int, float), "on_above": (int, float), "off_below": (int, float),
    "min_on_s": (int, float), "min_off_s": (int, float), "force_on": (list,),
    "force_off": (list,), "fault_after_s": (int, float), "fault_min_change": (int, float),
}
_ONLY = {"control": {"channel", "on_below", "off_above", "on_above", "off_below", "min_on_s",
                     "min_off_s", "force_on", "force_off", "fault_after_s", "fault_min_change"},
         "alert": {"classes", "hold_off_s"}, "stop": {"classes"}}


def _err(src: str, key: str, msg: str) -> TrainerError:
    return TrainerError(f"{src}: [{key}] {msg}")


def parse_actions(raw: Any, src: str, channels: tuple[str, ...],
                  classes: tuple[str, ...] | None) -> tuple[dict, ...]:
    """The [[actions]] list, each checked; returned as plain dicts (class names kept)."""
    if not isinstance(raw, list) or not raw:
        raise _err(src, "actions", "must be a list of tables ([[actions]] ...)")
    out = []
    names = set()
    for i, a in enumerate(raw):
        key = f"actions.{i}"
        if not isinstance(a, dict):
            raise _err(src, key, "must be a table")
        for k, v in a.items():
            kinds = _KEYS.get(k)
            if kinds is None:
                raise _err(src, f"{key}.{k}", f"unknown key; known: {', '.join(_KEYS)}")
            if isinstance(v, bool) != (bool in kinds) or not isinstance(v, kinds):
                raise _err(src, f"{key}.{k}", f"has the wrong type: {v!r}")
        kind = a.get("kind")
        if kind not in KINDS:
            raise _err(src, f"{key}.kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
        for k in a:
            if any(k in keys for keys in _ONLY.values()) and k not in _ONLY[kind]:
                raise _err(src, f"{key}.{k}", f"is not a setting of a {kind} action")
        name = a.get("name", kind)
        if name in names:
            raise _err(src, f"{key}.name", f"two actions are called {name!r}")
        names.add(name)
        for k in ("classes", "force_on", "force_off"):
            for c in a.get(k, ()):
                if classes is not None and c not in classes:
                    raise _err(src, f"{key}.{k}", f"{c!r} is not one of labels.classes")
        if kind == "control":
            ch = a.get("channel")
            if ch not in channels:
                raise _err(src, f"{key}.channel", f"{ch!r} is not one of the channels {list(channels)}")
            below, above = "on_below" in a, "on_above" in a
            if below == above:
                raise _err(src, key, "a control needs on_below (heating) or on_above (cooling, "
                           "ventilation), not both")
            if below and a.get("off_above", a["on_below"]) < a["on_below"]:
                raise _err(src, f"{key}.off_above", "must be >= on_below (the hysteresis band)")
            if above and a.get("off_below", a["on_above"]) > a["on_above"]:
                raise _err(src, f"{key}.off_below", "must be <= on_above (the hysteresis band)")
        elif not a.get("classes") and classes is not None and kind == "alert":
            raise _err(src, f"{key}.classes", "an alert needs the classes that raise it")
        n, m = a.get("n", 1), a.get("m", a.get("n", 1))
        if ("n" in a or "m" in a) and not 1 <= n <= m <= 32:
            raise _err(src, key, f"need 1 <= n <= m <= 32, got n={n}, m={m}")
        out.append(dict(a, name=name))
    return tuple(out)


def device_actions(actions: tuple[dict, ...], labels: list[str]) -> list[dict]:
    """config.json entries: class names become output indices."""
    dev = []
    for a in actions:
        d = dict(a)
        for k in ("classes", "force_on", "force_off"):
            if k in d:
                d[k] = [labels.index(c) for c in d[k] if c in labels]
        dev.append(d)
    return dev
