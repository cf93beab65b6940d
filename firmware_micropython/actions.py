# Named actions per domain (config.json "actions", from edgeloop.toml [[actions]]): what the
# board does with each window's model output and its latest sample.
#
#   stop     a relay, latched: N of M windows of its classes at >= threshold stop the machine
#            until the board is reset (the machine's action).
#   alert    an LED/buzzer pin pulsed and an "alert" event: N of M windows of its classes; after
#            an alert, hold_off_s must pass with no positive window before the next one, so one
#            fall raises one alert however many windows see it (the wearable's action).
#   control  an output that changes the world (heating, cooling, ventilation) from one channel
#            with hysteresis: on when the value crosses `on_below` (or `on_above`), off when it
#            crosses back past `off_above` (or `off_below`); `force_on` / `force_off` classes
#            (N of M windows) override it, e.g. ventilate while occupied, never heat with the
#            window open; min_on_s / min_off_s keep the actuator from chattering. With
#            `fault_after_s`, an output on that long without the channel moving by
#            `fault_min_change` in its direction reports an "actuator_fault" (a failed heater),
#            unless a force_off class explains it (the window is open).
#
# Every rule is integer-only in the sample's counts and the output's int8 domain; events are
# reported through a preallocated list of (code, action index, level).
from decision import Decision

STOP = 1
ALERT = 2
OUTPUT = 3
FAULT = 4
_EVENTS = (None, "stop", "alert", "output", "actuator_fault")  # the app's event names


def on_board(cfg, hw, model, n_out, channels):
    """The standalone app's actions (config.json "actions") on the board's output pins
    (hardware.Hardware.output: machine.Pin, or the virtual board's recording pins)."""
    names = cfg.get("channels")
    names = list(names) if isinstance(names, list) else []
    cpus = cfg.get("counts_per_unit", 1)
    cpus = cpus if isinstance(cpus, list) else [cpus] * channels
    return Actions(cfg["actions"], cfg.get("decision") or {}, n_out, model.output_scale,
                   model.output_zero_point, names, cpus, hw.output)


def _count(cfg, key, cpu):
    v = cfg.get(key)
    return None if v is None else int(round(v * cpu))


class _Classes:
    """N of M windows of some classes at >= threshold: a Decision of its own, never latched."""

    def __init__(self, classes, cfg, base, n_out, scale, zp):
        d = {"fault_classes": classes, "n": cfg.get("n", base.get("n", 1)),
             "m": cfg.get("m", base.get("m", 1)), "latch": False,
             "threshold": cfg.get("threshold", base.get("threshold", 0.5))}
        self.d = Decision(n_out, scale, zp, d)

    def update(self, out):
        return self.d.update(out)


class Action:
    def __init__(self, index, cfg, pin):
        self.index = index
        self.name = cfg.get("name", cfg.get("kind"))
        self.kind = cfg.get("kind")
        self.pin = pin
        self.active_high = cfg.get("active_high", True)
        self.level = 0
        self.switchings = 0
        self.set(0)
        self.switchings = 0

    def set(self, level):
        if level != self.level:
            self.switchings += 1
        self.level = level
        if self.pin is not None:
            self.pin.value(level if self.active_high else 1 - level)


class Actions:
    """All of a run's actions. update(out, sample, t_ms) after every window; events in .events
    (a list of [code, action, level], .n of them valid) until the next update."""

    def __init__(self, cfgs, base, n_out, scale, zp, channels, cpus, make_pin):
        self.items = []
        for i, c in enumerate(cfgs):
            kind = c.get("kind")
            if kind not in ("stop", "alert", "control"):
                raise ValueError("action %r: kind must be stop, alert or control" % (c.get("name"),))
            a = Action(i, c, make_pin(c.get("pin")))
            if kind == "control":
                ch = c.get("channel")
                if ch not in channels:
                    raise ValueError("action %r: no channel %r" % (a.name, ch))
                a.ch = channels.index(ch)
                cpu = cpus[a.ch]
                a.on_below = _count(c, "on_below", cpu)
                a.on_above = _count(c, "on_above", cpu)
                a.off_above = _count(c, "off_above", cpu)
                a.off_below = _count(c, "off_below", cpu)
                if (a.on_below is None) == (a.on_above is None):
                    raise ValueError("action %r: give on_below or on_above" % (a.name,))
                if a.on_below is not None and a.off_above is None:
                    a.off_above = a.on_below
                if a.on_above is not None and a.off_below is None:
                    a.off_below = a.on_above
                a.min_on = int(c.get("min_on_s", 0) * 1000)
                a.min_off = int(c.get("min_off_s", 0) * 1000)
                a.since = -1 << 29  # t_ms of the last switching (long ago)
                a.force_on = _Classes(c["force_on"], c, base, n_out, scale, zp) \
                    if c.get("force_on") else None
                a.force_off = _Classes(c["force_off"], c, base, n_out, scale, zp) \
                    if c.get("force_off") else None
                a.fault_after = int(c.get("fault_after_s", 0) * 1000)
                a.fault_change = _count(c, "fault_min_change", cpu) or 0
                a.ref = 0  # value when the output last came on
                a.faulted = False
            else:
                a.rule = _Classes(c.get("classes", base.get("fault_classes", [])), c, base,
                                  n_out, scale, zp)
                a.hold_off = int(c.get("hold_off_s", 0) * 1000)
                a.last_pos = -1 << 29
                a.alerts = 0
            self.items.append(a)
        self.events = [[0, 0, 0] for _ in range(2 * len(self.items) + 1)]
        self.n = 0
        self.stopped = False

    def act(self, out, sample, t_ms, w, emit):
        """The standalone app's window: update on its model output and latest sample (sample[0:]),
        one event line per switching or alert. True when a stop or an alert fired."""
        self.update(out, sample, 0, t_ms)
        fired = False
        for i in range(self.n):
            e = self.events[i]
            emit({"event": _EVENTS[e[0]], "action": self.items[e[1]].name, "level": e[2],
                  "w": w, "t_ms": t_ms})
            if e[0] <= ALERT:
                fired = True
        return fired

    def _event(self, code, a, level):
        e = self.events[self.n]
        e[0] = code
        e[1] = a.index
        e[2] = level
        self.n += 1

    def update(self, out, sample, off, t_ms):
        """One window: out = the model's int8 outputs, sample[off:] = its latest sample."""
        self.n = 0
        for a in self.items:
            if a.kind == "control":
                self._control(a, out, sample[off + a.ch], t_ms)
                continue
            pos = a.rule.update(out)
            if a.kind == "stop":
                if pos and not a.level:
                    a.set(1)
                    self.stopped = True
                    self._event(STOP, a, 1)
                continue
            if pos:  # alert: one per episode, hold-off after the last positive window
                if t_ms - a.last_pos >= a.hold_off or a.alerts == 0:
                    a.alerts += 1
                    a.set(1)
                    self._event(ALERT, a, 1)
                a.last_pos = t_ms
            elif a.level and t_ms - a.last_pos >= a.hold_off:
                a.set(0)  # the LED/buzzer goes quiet once the episode is over

    def _control(self, a, out, v, t_ms):
        want = a.level
        if a.on_below is not None:
            if v <= a.on_below:
                want = 1
            elif v >= a.off_above:
                want = 0
        else:
            if v >= a.on_above:
                want = 1
            elif v <= a.off_below:
                want = 0
        forced_on = a.force_on is not None and a.force_on.update(out)
        forced_off = a.force_off is not None and a.force_off.update(out)
        if forced_on:
            want = 1
        if forced_off:
            want = 0
        held = t_ms - a.since < (a.min_on if a.level else a.min_off)
        if want != a.level and not held:
            a.set(want)
            a.since = t_ms
            a.ref = v
            self._event(OUTPUT, a, want)
        explained = a.force_off is not None and a.force_off.d.count > 0  # e.g. a window open
        if a.fault_after and a.level and not a.faulted and not explained and \
                t_ms - a.since >= a.fault_after:
            moved = (v - a.ref) if a.on_below is not None else (a.ref - v)
            if moved < a.fault_change:  # on all this time and the channel did not follow
                a.faulted = True
                self._event(FAULT, a, 1)
        if not a.level:
            a.faulted = False
