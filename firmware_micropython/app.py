# Standalone application: sensor -> pipeline -> relay/LED, with JSON-lines status on the console.
#
# Hardware comes from machine (I2C, Pin, ADC, WDT) on a real board; where machine has no I2C
# (the virtual board) or the config asks for it ("sensor": {"sim": FILE}), the simulated chips in
# simhw/ play the sensor, fed from a file of samples, and pins record what was switched.
# Sensor read errors are reported and counted, never fatal; after `reinit_after` consecutive
# errors the driver is re-created (a board that lost power on the sensor recovers).
#
# config.json keys read here (the trainer's device config plus board facts added by deploy):
#   model ("model.elb"), sample_rate (Hz), counts_per_unit (sets the accelerometer range the
#   model was trained at), window, stride, labels, preprocess (preprocess.Preprocessor's table;
#   absent: raw window quantized to the model input), decision {fault_classes, threshold or
#   threshold_q, n, m, action ("stop" latches), latch}, pins {sda, scl, relay, led, adc},
#   sensor {kind: mpu6050|adxl345|analog, addr, range_g, i2c, freq, sim (sample file, virtual
#   board), sim_units, fail_every}, actuator {pin, led, active_high}, watchdog (true),
#   watchdog_ms (5000), max_windows (0: forever), reinit_after (50 consecutive read errors).
import gc
import json
import sys
import time

from array import array

import elrt
from decision import Decision
from pipeline import Pipeline, PreprocessFeatures, RawFeatures

try:
    from time import ticks_add, ticks_diff, ticks_ms, ticks_us
except ImportError:  # pragma: no cover - every MicroPython port has them
    ticks_add = ticks_ms = ticks_us = ticks_diff = None


_MPU_RANGE = {16384: 2, 8192: 4, 4096: 8, 2048: 16}


def sample_rate(cfg):
    return int(cfg.get("sample_rate_hz", cfg.get("sample_rate", 1000)))


def sample_rate_f(cfg):
    """The rate as a float: building sensors sample slower than 1 Hz (1/60)."""
    return float(cfg.get("sample_rate_hz", cfg.get("sample_rate", 1000)))


def load_config(path="config.json"):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        return {}


publish = None  # the fleet's hook (net/node.py), set by main.py when config.json has "fleet"
pipeline = None  # the running Pipeline and the sensor's g per count, for the fleet's `collect`
sensor_scale = 1.0


def emit(obj):
    sys.stdout.write(json.dumps(obj))
    sys.stdout.write("\n")
    if publish is not None:
        publish(obj)


def _one_accelerometer(cfg):
    """A sensor list that is one 3-axis accelerometer (the machine) is read by its driver
    directly, as the "sensor" entry: the list's machinery would cost ~5 KB of a 100 KB heap
    that a large vibration model needs."""
    specs = cfg.get("sensors")
    if not specs or len(specs) != 1:
        return
    s = specs[0]
    if s.get("driver") not in ("mpu6050", "adxl345") or list(s.get("reads", ())) != ["ax", "ay", "az"]:
        return
    scfg = cfg.setdefault("sensor", {})
    scfg.setdefault("kind", s["driver"])
    rng = s.get("range", {})
    if rng.get("accel_g", rng.get("range_g")):
        scfg.setdefault("range_g", rng.get("accel_g", rng.get("range_g")))
    bus = s.get("bus", {})
    for k in ("addr", "i2c", "sda", "scl", "freq"):
        if k in bus:
            scfg.setdefault(k, bus[k])
    scfg.setdefault("sim_units", int(s.get("counts_per_unit", [16384])[0]))
    del cfg["sensors"]


class Hardware:
    """The board's parts: sensor driver(s), relay and LED pins, watchdog."""

    def __init__(self, cfg):
        _one_accelerometer(cfg)
        self.cfg = cfg
        scfg = cfg.get("sensor", {})
        pins = cfg.get("pins", {})
        try:
            from machine import I2C, Pin
        except ImportError:
            I2C = Pin = None
        self.sim = Pin is None or "sim" in scfg
        self.chip = None
        self.row = None  # the simulated world's current sample (sensors list, virtual board)
        if self.sim:
            from simhw.pins import WDT
            from simhw.pins import Pin as SimPin

            Pin = SimPin
            SimPin.clock = self._samples_read
            self.i2c = self._sim_bus(scfg)
            wdt = WDT(timeout=cfg.get("watchdog_ms", 5000))
        elif "sensors" in cfg:
            from machine import WDT

            from sensors import real_buses

            self.i2c = real_buses(pins)  # one machine.I2C per bus the sensors name
            wdt = WDT(timeout=cfg.get("watchdog_ms", 5000)) if cfg.get("watchdog", True) else None
        else:
            from machine import WDT

            if scfg.get("kind", "mpu6050") != "analog":
                self.i2c = I2C(
                    scfg.get("i2c", 0),
                    sda=Pin(scfg.get("sda", pins.get("sda", 21))),
                    scl=Pin(scfg.get("scl", pins.get("scl", 22))),
                    freq=scfg.get("freq", 400000),
                )
            wdt = WDT(timeout=cfg.get("watchdog_ms", 5000)) if cfg.get("watchdog", True) else None
        self.wdt = wdt
        global _active
        _active = self  # so Ctrl-C anywhere after this point keeps the watchdog fed
        acfg = cfg.get("actuator", {})
        self.active_high = acfg.get("active_high", True)
        relay_pin = acfg.get("pin", pins.get("relay"))
        led_pin = acfg.get("led", pins.get("led"))
        self.actuations = 0  # relay switchings since start (reported at the end)
        self.relay = Pin(relay_pin, Pin.OUT) if relay_pin is not None else None
        self.led = Pin(led_pin, Pin.OUT) if led_pin is not None else None
        self.actuate(False)
        self.actuations = 0
        self.sensor = self._first_sensor()

    def _first_sensor(self):
        # A sensor missing at power-up (loose connector) is reported and retried each second;
        # the watchdog is fed meanwhile, the relay stays safe (off).
        tries = 0
        while True:
            try:
                return self.make_sensor()
            except OSError as exc:
                tries += 1
                if self.sim:
                    raise
                if tries == 1 or tries % 60 == 0:
                    emit({"event": "sensor_missing", "errno": exc.args[0] if exc.args else 0,
                          "tries": tries})
                self.feed()
                time.sleep_ms(1000)

    def _samples_read(self):
        if self.row is not None:
            return self.row.samples
        return self.chip.samples_read if self.chip is not None else 0

    def _sim_bus(self, scfg):
        from simhw.chips import SimADXL345, SimMPU6050
        from simhw.i2c import I2C
        from simhw.source import FileSource

        if "sensors" in self.cfg:  # every sensor's simulated chip, fed from one sample file
            from simhw.world import sim_bus

            specs = self.cfg["sensors"]
            n = 0
            for spec in specs:
                n += len(spec["channels"])
            self.source = FileSource(scfg.get("sim", "samples.s16"), n, scfg.get("loop", False))
            bus, self.row = sim_bus(specs, self.source, n, int(1000 / sample_rate_f(self.cfg)))
            bus.fail_every = int(scfg.get("fail_every", 0))
            return lambda spec_bus: bus

        channels = 1 if scfg.get("kind") == "analog" else 3
        self.source = FileSource(scfg.get("sim", "samples.s16"), channels, scfg.get("loop", False))
        units = int(scfg.get("sim_units", 1000))  # sample file units per g (milli-g default)
        if scfg.get("kind") == "adxl345":
            self.chip = SimADXL345(self.source, scfg.get("addr", 0x53), units)
        elif scfg.get("kind") == "analog":
            return None
        else:
            self.chip = SimMPU6050(self.source, scfg.get("addr", 0x68), units)
        bus = I2C([self.chip])
        bus.fail_every = int(scfg.get("fail_every", 0))  # simulated loose wire
        return bus

    def make_sensor(self):
        if "sensors" in self.cfg:  # the run's sensors as one multi-channel sample
            from sensors import Sensors

            return Sensors(self.cfg["sensors"], self.i2c, sample_rate_f(self.cfg), self.row)
        scfg = self.cfg.get("sensor", {})
        kind = scfg.get("kind", "mpu6050")
        rate = sample_rate(self.cfg)
        # The model was trained on counts at counts_per_unit: set the range that gives them.
        cpu = self.cfg.get("counts_per_unit")
        if kind == "mpu6050":
            from drivers.mpu6050 import MPU6050

            rng = scfg.get("range_g") or _MPU_RANGE.get(int(cpu or 16384))
            if rng is None:
                raise ValueError("counts_per_unit %s is no MPU6050 range (16384, 8192, 4096, 2048)" % cpu)
            sensor = MPU6050(self.i2c, scfg.get("addr", 0x68), rng, rate)
        elif kind == "adxl345":
            from drivers.adxl345 import ADXL345

            sensor = ADXL345(self.i2c, scfg.get("addr", 0x53), scfg.get("range_g", 16), rate)
        else:
            sensor = None
        if sensor is not None:
            if cpu and int(cpu) != sensor.lsb_per_g:
                raise ValueError("model trained at %s counts/g but the %s gives %d" % (cpu, kind, sensor.lsb_per_g))
            return sensor
        if kind == "analog":
            from drivers.analog import Analog

            if self.sim:
                from simhw.pins import ADC

                return Analog(ADC(self.source))
            return Analog.on_pin(scfg.get("pin", self.cfg.get("pins", {}).get("adc", 34)))
        raise ValueError("unknown sensor kind %r (mpu6050, adxl345, analog)" % (kind,))

    def actuate(self, on):
        level = 1 if on == self.active_high else 0
        if self.relay is not None:
            if self.relay.value() != level:
                self.actuations += 1
            self.relay.value(level)
        if self.led is not None:
            self.led.value(1 if on else 0)

    def feed(self):
        if self.wdt is not None:
            self.wdt.feed()

    def maintenance(self):
        """Ctrl-C (mpremote, `edgeloop deploy`): keep the started watchdog fed from a timer so
        the board stays in the REPL for maintenance; a hard reset (`machine.reset()`) ends it."""
        if self.wdt is None or self.sim:
            return
        from machine import Timer

        wdt = self.wdt
        self._timer = Timer(0)
        self._timer.init(period=1000, mode=Timer.PERIODIC, callback=lambda t: wdt.feed())

    def finished(self):
        """Simulated data ran out (never true on a real board)."""
        if not self.sim:
            return False
        if self.row is not None:
            return self.row.exhausted
        if self.chip is not None:
            return self.chip.exhausted
        return False


_active = None  # the Hardware in use (its watchdog is running)


class Pacer:
    """Holds a loop to one pass per period_us of the ticks clock, across the clock's wrap
    (2**30 us on an ESP32: every ~18 minutes). Deadlines advance with ticks_add, never with
    `+=`: a sum past the wrap is a big int, which ticks_diff misreads, and the loop stalls.
    A pass later than 4 periods restarts the clock (counted in overruns) rather than read a
    burst of samples back to back. clock: the ticks_us function (a test injects its own)."""

    def __init__(self, period_us, clock=None, idle=None):
        self.period = period_us
        self.clock = clock or ticks_us
        self.idle = idle  # called while waiting (slow rates: feed the watchdog, then sleep)
        self.next_t = self.clock()
        self.overruns = 0

    def wait(self):
        period = self.period
        if not period:
            return
        clock = self.clock
        if ticks_diff(clock(), self.next_t) > 4 * period:
            self.overruns += 1
            self.next_t = clock()
        else:
            idle = self.idle
            while ticks_diff(clock(), self.next_t) < 0:
                if idle is not None:
                    idle()
                    time.sleep_ms(20)
        self.next_t = ticks_add(self.next_t, period)


def main(cfg=None):
    try:
        return _main(cfg if cfg is not None else load_config())
    except KeyboardInterrupt:
        if _active is not None:
            _active.maintenance()
        emit({"event": "stopped"})
        raise


def _main(cfg):
    # Heap order matters on a 100 KB board: the model's buffers are the largest contiguous
    # blocks, so they go first; the preprocessing tables are large as parsed JSON and small as
    # the Preprocessor's arrays, so the JSON is dropped as soon as they are built.
    gc.collect()
    model = elrt.Model()
    model.load(cfg.get("model", "model.elb"))
    pre_cfg = cfg.pop("preprocess", None)
    features = PreprocessFeatures(pre_cfg) if pre_cfg else None
    pre_window = pre_cfg.get("window") if pre_cfg else None
    pre_cfg = None
    gc.collect()
    hw = Hardware(cfg)
    channels = hw.sensor.channels
    window = int(cfg.get("window", pre_window or len(model.input) // channels))
    stride = int(cfg.get("stride", window))
    if features is None:
        features = RawFeatures(hw.sensor.scale_g, model.input_scale, model.input_zero_point)
    n_out = len(model.output)
    decision = Decision(n_out, model.output_scale, model.output_zero_point, cfg.get("decision"))
    pipe = Pipeline(model, features, decision, window, stride, channels)
    global pipeline, sensor_scale
    pipeline, sensor_scale = pipe, hw.sensor.scale_g  # read by the fleet's `collect`
    labels = cfg.get("labels") or [str(i) for i in range(n_out)]
    period_us = 0 if hw.sim else int(1000000 / sample_rate_f(cfg))
    gc.collect()
    emit({"event": "start", "kernels": elrt.KERNELS, "window": window, "stride": stride,
          "channels": channels, "outputs": n_out, "sim": hw.sim, "free": gc.mem_free()})

    return _loop(cfg, hw, pipe, decision, labels, channels, period_us)


def _loop(cfg, hw, pipe, decision, labels, channels, period_us):
    max_windows = int(cfg.get("max_windows", 0))
    reinit_after = int(cfg.get("reinit_after", 50))
    sample = array("h", bytes(2 * channels))
    errors = 0
    consecutive = 0
    alarm = False
    # a building samples once a minute: the watchdog (5 s) is fed while the loop waits
    pacer = Pacer(period_us, idle=hw.feed if period_us >= 1000000 else None)
    while True:
        hw.feed()
        pacer.wait()  # a window's inference outlasting a few periods shows in "overruns"
        try:
            hw.sensor.read_raw_into(sample, 0)
            consecutive = 0
        except OSError as exc:
            errors += 1
            consecutive += 1
            if consecutive == 1 or errors % 100 == 0:
                emit({"event": "sensor_error", "errno": exc.args[0] if exc.args else 0,
                      "errors": errors, "window": pipe.windows})
            if consecutive >= reinit_after:
                consecutive = 0
                try:
                    hw.sensor = hw.make_sensor()
                    emit({"event": "sensor_reinit", "errors": errors})
                except OSError:
                    pass
            if hw.finished():
                break
            continue
        if hw.finished():
            break
        if not pipe.push(sample):
            continue
        t0 = ticks_us()
        new_alarm = pipe.run()
        dt = ticks_diff(ticks_us(), t0)
        if new_alarm != alarm:
            alarm = new_alarm
            hw.actuate(alarm)
        gc.collect()  # the status line below is the only garbage; keep "free" meaningful
        d = decision
        if d.anomaly:
            label = "anomaly" if d.positive else cfg.get("healthy", "normal")
        else:
            label = labels[d.cls] if d.cls < len(labels) else d.cls
        emit({"w": pipe.windows, "cls": d.cls, "label": label,
              "score": d.score, "pos": d.positive, "alarm": alarm, "us": dt,
              "free": gc.mem_free(), "errors": errors, "overruns": pacer.overruns})
        if max_windows and pipe.windows >= max_windows:
            break
    emit({"event": "end", "windows": pipe.windows, "errors": errors, "alarm": alarm,
          "actuations": hw.actuations})
    return pipe
