# Pipeline: sensor samples -> ring buffer -> windows -> features -> model -> decision.
# Everything is allocated in __init__; push() and run() allocate nothing, so a long run neither
# fragments the heap nor pauses for garbage collection (the test runs them under heap_lock).
from array import array


def _fixed_point(f):
    # f ~= mult / 2**shift with |count * mult| < 2**30 for int16 counts (stays a small int).
    shift = 16
    while shift > 0 and abs(f) * (1 << shift) >= 1 << 14:
        shift -= 1
    return int(round(f * (1 << shift))), shift


class RawFeatures:
    """Window of raw counts straight to the model's int8 input: q = count*scale/in_scale + zp.

    Used when the config declares no preprocessing (models trained on raw windows in g).
    """

    def __init__(self, scale_g, in_scale, in_zero_point):
        self.mult, self.shift = _fixed_point(scale_g / in_scale)
        self.round = (1 << (self.shift - 1)) if self.shift else 0
        self.zp = in_zero_point

    def run(self, win, out):
        mult = self.mult
        sh = self.shift
        rnd = self.round
        zp = self.zp
        for i in range(len(out)):
            q = ((win[i] * mult + rnd) >> sh) + zp
            out[i] = -128 if q < -128 else (127 if q > 127 else q)


class PreprocessFeatures:
    """The project's declared preprocessing (preprocess.py, the trainer's twin), integer-exact.

    Its input is the window of raw sensor counts; the trainer computed its calibration for the
    sensor range in the device config, so the counts here are the same counts it trained on.
    """

    def __init__(self, pre_cfg):
        import preprocess

        self.pre = preprocess.Preprocessor(pre_cfg)

    def run(self, win, out):
        self.pre.run(win, out)


class Pipeline:
    def __init__(self, model, features, decision, window, stride, channels):
        n_in = len(model.input)
        if window * channels != n_in and isinstance(features, RawFeatures):
            raise ValueError(
                "model input has %d values but window*channels is %d*%d" % (n_in, window, channels)
            )
        self.model = model
        self.features = features
        self.decision = decision
        self.window = window
        self.stride = stride
        self.channels = channels
        self.size = window * channels
        self.ring = array("h", bytes(2 * self.size))
        self.win = array("h", bytes(2 * self.size))
        self.head = 0  # where the next sample's first value goes
        self.filled = 0  # samples in the ring (up to window)
        self.since = 0  # samples since the last window
        self.windows = 0

    def push(self, sample):
        """Add one sample (channels raw counts); True when a new window is ready."""
        c = self.channels
        r = self.ring
        h = self.head
        for i in range(c):
            r[h + i] = sample[i]
        h += c
        self.head = 0 if h == self.size else h
        if self.filled < self.window:
            self.filled += 1
        self.since += 1
        if self.filled == self.window and self.since >= self.stride:
            self.since = 0
            return True
        return False

    def run(self):
        """Window (oldest sample first) -> features -> invoke -> decision; returns the alarm."""
        r = self.ring
        w = self.win
        h = self.head
        n = self.size
        j = 0
        for i in range(h, n):
            w[j] = r[i]
            j += 1
        for i in range(h):
            w[j] = r[i]
            j += 1
        self.features.run(w, self.model.input)
        self.model.invoke()
        self.windows += 1
        return self.decision.update(self.model.output)
