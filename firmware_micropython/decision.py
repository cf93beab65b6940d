# Decision: turn per-window model outputs into an alarm, robust to single bad windows.
# A window is "positive" when the top class is an alarm class with a score at or above the
# threshold (compared in the output's int8 domain, so no float math per window); for an anomaly
# model (one output: the anomaly score) when the score reaches the threshold. The alarm is on
# when at least N of the last M windows were positive. All state is preallocated.


class Decision:
    def __init__(self, n_outputs, out_scale, out_zero_point, cfg=None):
        cfg = cfg or {}
        self.n_outputs = n_outputs
        self.n = int(cfg.get("n", 3))
        self.m = int(cfg.get("m", 5))
        if not 1 <= self.n <= self.m:
            raise ValueError("decision needs 1 <= n <= m, got n=%d m=%d" % (self.n, self.m))
        # A "stop" action latches: a stopped machine stays stopped until the board is reset.
        self.latch = bool(cfg.get("latch", cfg.get("action") == "stop"))
        q = cfg.get("threshold_q")  # the trainer gives it in int8 units already
        if q is None:
            q = int(round(float(cfg.get("threshold", 0.5)) / out_scale)) + out_zero_point
        self.threshold_q = -128 if q < -128 else (127 if q > 127 else q)
        # Anomaly models (the trainer's autoencoder) output one score: high means anomalous.
        self.anomaly = bool(cfg.get("anomaly", n_outputs == 1))
        alarm = cfg.get("fault_classes", cfg.get("alarm_classes"))
        if self.anomaly:
            alarm = [0]
        elif alarm is None:
            alarm = list(range(1, n_outputs))
        self.alarm_mask = bytearray(n_outputs)
        for c in alarm:
            if not 0 <= c < n_outputs:
                raise ValueError("alarm class %d out of range (model has %d outputs)" % (c, n_outputs))
            self.alarm_mask[c] = 1
        self.hist = bytearray(self.m)
        self.reset()

    def reset(self):
        for i in range(self.m):
            self.hist[i] = 0
        self.idx = 0
        self.count = 0
        self.alarm = False
        self.cls = 0
        self.score = -128
        self.positive = False

    def update(self, out):
        """Feed one window's int8 outputs (memoryview/array of n_outputs); return the alarm.

        `out` may be a signed or an unsigned byte view of the int8 tensor (elrt exposes arena
        bytes), so values above 127 are read as negative.
        """
        best = 0
        top = out[0]
        if top > 127:
            top -= 256
        for i in range(1, self.n_outputs):
            v = out[i]
            if v > 127:
                v -= 256
            if v > top:
                top = v
                best = i
        self.cls = best
        self.score = top
        pos = 1 if (self.alarm_mask[best] and top >= self.threshold_q) else 0
        self.positive = pos == 1
        h = self.hist
        self.count += pos - h[self.idx]
        h[self.idx] = pos
        self.idx += 1
        if self.idx == self.m:
            self.idx = 0
        if self.count >= self.n:
            self.alarm = True
        elif not self.latch:
            self.alarm = False
        return self.alarm
