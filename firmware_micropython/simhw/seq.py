# Counts every sample the app receives by the sequence number the simulated chips hide in the
# signal (chips.py, seq=True: sample k carries k mod 4096 in the low 4 bits of its first three
# channels). A step back of up to _BACK samples is a duplicate (a sample pushed twice, a burst
# read again); any other jump is that many samples lost (mod 4096: a loss of 3841..4096 samples
# in one gap would read as duplicates or nothing, the app's own count says more). Allocates
# nothing per sample.
from micropython import const

_MOD = const(4096)
_BACK = const(256)


class SeqCheck:
    def __init__(self):
        self.n = 0  # samples checked
        self.lost = 0
        self.dup = 0
        self.gaps = 0  # places where samples were missing
        self.expect = -1

    def check(self, sample):
        k = (sample[0] & 15) | ((sample[1] & 15) << 4) | ((sample[2] & 15) << 8)
        self.n += 1
        e = self.expect
        if e < 0:
            self.expect = (k + 1) % _MOD
            return
        d = (k - e) % _MOD
        if d == 0:
            self.expect = (k + 1) % _MOD
        elif d < _MOD - _BACK:
            self.lost += d
            self.gaps += 1
            self.expect = (k + 1) % _MOD
        else:
            self.dup += 1  # a sample seen before: the next expected stays

    def report(self, status):
        """Add the counts to a status line (allocates: outside the sampling path)."""
        status["seq_n"] = self.n
        status["seq_lost"] = self.lost
        status["seq_dup"] = self.dup
        status["seq_gaps"] = self.gaps
