# The virtual board's world answering the standalone app's outputs (config.json
# sensor.sim_answer, written by `edgeloop deploy --board virtual` for a room run): the sample
# file is the room with nobody controlling it; what the board's heating and ventilation pins
# change is added on top, sample by sample, so a heater that is on warms the room the board
# reads and ventilation lowers its CO2 (in HIL mode the host's twin answers instead).
#
# The room is linear in what the outputs change, so the difference from the recording is exact
# superposition of the twin's model (trainer/twins/environment.py, its constants handed over by
# the host):
#   heat  two thermal nodes: the air (c_air) and the building mass (c_mass) through h_am, the
#         air to outdoors through ua_w_k (envelope plus infiltration); the heater's watts on
#         the air; explicit Euler in substep_s steps.
#   vent  CO2 pulled towards the outdoor level: d(delta)/dt = -(n0 + n_vent) / 3600 * delta
#         - n_vent / 3600 * (recorded - outdoor), n in air changes an hour.
#   rh    the relative humidity the heated air shows: the same water at the warmer temperature
#         (Magnus formula).
# Not modelled (small against these): ventilation's heat loss and the drier outdoor air it brings
# in, an open window's extra exchange on the difference.
from math import exp


def _sat(temp_c):
    # water vapour at saturation (g/m3), as the twin's saturation_g_m3
    return 216.7 * 6.112 * exp(17.62 * temp_c / (243.12 + temp_c)) / (273.15 + temp_c)


class Answer:
    """Adds the outputs' effect to the shared row after each sample (row.answer)."""

    def __init__(self, cfg, level):
        self.level = level  # level(pin) -> 0/1, the board's output pin as it is now
        h = cfg.get("heat")
        self.heat = h
        if h is not None:
            self.h_ch = int(h["channel"])
            self.h_cpu = float(h["cpu"])
            self.air = 0.0  # K above the recording
            self.mass = 0.0
        v = cfg.get("vent")
        self.vent = v
        if v is not None:
            self.v_ch = int(v["channel"])
            self.v_cpu = float(v["cpu"])
            self.co2 = 0.0  # ppm above the recording (negative: ventilated)
        self.period_s = float(cfg.get("period_s", 60.0))

    def _on(self, out):
        lv = self.level(out["pin"])
        return lv if out.get("active_high", True) else 1 - lv

    def apply(self, values):
        h = self.heat
        if h is not None:
            p = h["watts"] if self._on(h) else 0.0
            steps = max(1, int(self.period_s / h.get("substep_s", 10.0)))
            dt = self.period_s / steps
            for _ in range(steps):
                flow = h["h_am"] * (self.air - self.mass)
                air = self.air + (p - flow - h["ua_w_k"] * self.air) * dt / h["c_air"]
                self.mass += flow * dt / h["c_mass"]
                self.air = air
            t = values[self.h_ch] / self.h_cpu  # the recorded temperature
            values[self.h_ch] += int(round(self.air * self.h_cpu))
            rh = h.get("rh_channel", -1)
            if rh >= 0:  # the same water in warmer air: lower relative humidity (Magnus)
                values[rh] = int(round(values[rh] * _sat(t) / _sat(t + self.air)))
        v = self.vent
        if v is not None:
            n = v["n_vent"] if self._on(v) else 0.0
            recorded = values[self.v_ch] / self.v_cpu - v["outdoor"]
            rate = self.period_s / 3600.0
            self.co2 += -(v["n0"] + n) * rate * self.co2 - n * rate * recorded
            values[self.v_ch] += int(round(self.co2 * self.v_cpu))
