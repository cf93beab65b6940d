# The simulated world's current sample, shared by the simulated chips of a sensor list: all
# channels of a source in the run's counts, advanced once per sample by whoever paces the
# simulation, with its simulated time t_ms (the SCD4x's 5 s cycle runs on it). seq=True hides
# each sample's sequence number (mod 4096) in the low 4 bits of the first three channels'
# counts, as the clocked chips do (simhw/seq.py counts them on the app's side).


class SharedRow:
    """The current sample of a source (all channels), and simulated time in ms."""

    def __init__(self, source, channels, period_ms, seq=False):
        self.source = source
        self.seq = seq and channels >= 3
        self.values = [0] * channels
        self.period_ms = period_ms
        self.t_ms = 0
        self.samples = 0
        self.exhausted = False
        self.answer = None  # simhw.answer.Answer: the board's outputs changing the world

    def advance(self):
        if not self.source.next_into(self.values):
            self.exhausted = True
            return False
        if self.answer is not None:
            self.answer.apply(self.values)
        if self.seq:
            k = self.samples & 0xFFF
            v = self.values
            for i in range(3):
                v[i] = (v[i] & ~15) | ((k >> (4 * i)) & 15)
        self.samples += 1
        self.t_ms += self.period_ms
        return True
