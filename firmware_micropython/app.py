# Standalone application: sensor -> pipeline -> relay/LED, with JSON-lines status on the console.
#
# Hardware comes from machine (I2C, Pin, ADC, WDT) on a real board; where machine has no I2C
# (the virtual board) or the config asks for it ("sensor": {"sim": FILE}), the simulated chips in
# simhw/ play the sensor, fed from a file of samples, and pins record what was switched.
# Sensor read errors are reported and counted, never fatal; after `reinit_after` consecutive
# errors the driver is re-created (a board that lost power on the sensor recovers).
#
# Sampling never waits for inference: the sensor's own clock fills its FIFO (MPU6050, ADXL345)
# or a machine.Timer fills the ring (analog) at the sample rate, and the loop drains them into
# one preallocated sampling.Ring, then feeds the pipeline from it. Preprocessing, inference,
# gc and the status line run between drains; the FIFO holds the samples meanwhile. Samples the
# sensor reports lost (FIFO overflow, missed timer ticks) are counted ("lost"), never hidden.
# A window whose work outlasts its stride is an overrun ("overruns"); once the backlog behind
# a window reaches a stride (or half the FIFO) that window is skipped ("skipped") rather than
# the FIFO left to overflow, so the model keeps seeing fresh, gap-free windows.
#
# config.json keys read here (the trainer's device config plus board facts added by deploy):
#   model ("model.elb"), sample_rate (Hz), counts_per_unit (sets the accelerometer range the
#   model was trained at), window, stride, labels, preprocess (preprocess.Preprocessor's table;
#   absent: raw window quantized to the model input), decision {fault_classes, threshold or
#   threshold_q, n, m, action ("stop" latches), latch}, pins {sda, scl, relay, led, adc},
#   sensor {kind: mpu6050|adxl345|analog, addr, range_g, i2c, freq, sim (sample file, virtual
#   board), sim_units, sim_clock ("wall": samples in real time, or "replay": as fast as the
#   app drains them), sim_seq (hide sequence numbers for the realtime bench), ring (samples),
#   fail_every}, actuator {pin, led, active_high}, watchdog (true),
#   watchdog_ms (5000), max_windows (0: forever), max_seconds (0: forever), reinit_after (50
#   consecutive read errors),
#   skip_late (true: a window the loop is far behind on is skipped, not inferred).
import gc
import json
import sys
import time

from array import array

import elrt
from decision import Decision
from pipeline import Pipeline, PreprocessFeatures, RawFeatures
from sampling import Ring

try:
    from time import sleep_us, ticks_add, ticks_diff, ticks_ms, ticks_us
except ImportError:  # pragma: no cover - every MicroPython port has them
    ticks_add = ticks_ms = ticks_us = ticks_diff = sleep_us = None


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
        self.adc = None
        self.seq = None  # simhw.seq.SeqCheck when the simulated chip hides sequence numbers
        self.replay = False  # simulated samples come as fast as they are drained
        self.timer_cls = None
        self.row = None  # the simulated world's current sample (sensors list, virtual board)
        if self.sim:
            from simhw.pins import WDT
            from simhw.pins import Pin as SimPin

            Pin = SimPin
            SimPin.clock = self._samples_read
            self.i2c = self._sim_bus(scfg)
            wdt = WDT(timeout=cfg.get("watchdog_ms", 5000))
            if scfg.get("kind") == "analog":
                from simhw.timer import Timer

                self.timer_cls = Timer
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
        from simhw.i2c import I2C
        from simhw.source import FileSource

        clock_kind = scfg.get("sim_clock", "wall")
        if clock_kind not in ("wall", "replay"):
            raise ValueError("sensor.sim_clock must be 'wall' or 'replay', not %r" % (clock_kind,))
        self.replay = clock_kind == "replay"
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
        self.source = FileSource(scfg.get("sim", "samples.s16"), channels, scfg.get("loop", False),
                                 64)  # simulated hardware: small blocks, heap is the board's
        units = int(scfg.get("sim_units", 1000))  # sample file units per g (milli-g default)
        clock = None if self.replay else ticks_us
        seq = bool(scfg.get("sim_seq", False))
        if seq:
            from simhw.seq import SeqCheck

            self.seq = SeqCheck()
        if scfg.get("kind") == "adxl345":
            from simhw.adxl345 import SimADXL345

            self.chip = SimADXL345(self.source, scfg.get("addr", 0x53), units, clock, seq)
        elif scfg.get("kind") == "analog":
            return None
        else:
            from simhw.chips import SimMPU6050

            self.chip = SimMPU6050(self.source, scfg.get("addr", 0x68), units, clock, seq)
        bus = I2C([self.chip])
        bus.fail_every = int(scfg.get("fail_every", 0))  # simulated loose wire
        return bus

    def make_sensor(self):
        if "sensors" in self.cfg:  # the run's sensors as one multi-channel sample
            from polled import Polled
            from sensors import Sensors

            # no FIFO behind the list: read on the sample clock (as fast as drained in replay)
            return Polled(Sensors(self.cfg["sensors"], self.i2c, sample_rate_f(self.cfg),
                                  self.row), sample_rate_f(self.cfg), not self.replay)
        scfg = self.cfg.get("sensor", {})
        kind = scfg.get("kind", "mpu6050")
        # The model was trained on counts at counts_per_unit: set the range that gives them.
        cpu = self.cfg.get("counts_per_unit")
        if kind == "mpu6050":
            from drivers.mpu6050 import MPU6050

            rng = scfg.get("range_g") or _MPU_RANGE.get(int(cpu or 16384))
            if rng is None:
                raise ValueError("counts_per_unit %s is no MPU6050 range (16384, 8192, 4096, 2048)" % cpu)
            sensor = MPU6050(self.i2c, scfg.get("addr", 0x68), rng, sample_rate_f(self.cfg))
        elif kind == "adxl345":
            from drivers.adxl345 import ADXL345

            sensor = ADXL345(self.i2c, scfg.get("addr", 0x53), scfg.get("range_g", 16),
                             sample_rate_f(self.cfg))
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

                self.adc = ADC(self.source)
                return Analog(self.adc, rate_hz=sample_rate_f(self.cfg))
            return Analog.on_pin(scfg.get("pin", self.cfg.get("pins", {}).get("adc", 34)),
                                 rate_hz=sample_rate_f(self.cfg))
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

    def start(self, ring):
        """Start the sensor's clocked sampling into ring (FIFO on, or the ADC's timer)."""
        if hasattr(self.sensor, "adc"):  # analog: a timer fills the ring
            self.sensor.start(ring, self.timer_cls)
        else:
            self.sensor.start()

    def drain(self, ring):
        """The sampling path: everything the sensor holds into ring; how many it moved."""
        if self.timer_cls is not None and self.sim:
            self.timer_cls.service()  # the virtual board's timer callbacks
        return self.sensor.drain(ring)

    def nap(self, us):
        """Idle between drains (the virtual board's timers fire meanwhile, on time)."""
        if self.sim and self.timer_cls is not None and self.timer_cls.active:
            self.timer_cls.sleep_us(us)
        else:
            sleep_us(us)

    def finished(self):
        """Simulated data ran out and the chip's FIFO is empty (never true on a real board)."""
        if not self.sim:
            return False
        if self.row is not None:
            return self.row.exhausted
        if self.chip is not None:
            return self.chip.exhausted and not self.chip.pending()
        if self.adc is not None:
            return self.adc.ended
        return False


_active = None  # the Hardware in use (its watchdog is running)


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
    # Keep a contiguous block for the pipeline's window buffers while the hardware's modules
    # load (their import leaves holes that would fragment the heap).
    ch = cfg.get("channels")
    w = int(cfg.get("window", pre_window or 256))
    try:
        reserve = bytearray(6 * w * (len(ch) if isinstance(ch, list) else 3) + 1024)
    except MemoryError:
        reserve = None
    hw = Hardware(cfg)
    reserve = None
    gc.collect()
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
    sampler = Sampler(cfg, hw, window, stride, channels)
    gc.collect()
    emit({"event": "start", "kernels": elrt.KERNELS, "window": window, "stride": stride,
          "channels": channels, "outputs": n_out, "sim": hw.sim, "free": gc.mem_free(),
          "rate": sampler.rate, "stride_us": sampler.stride_us, "fifo": sampler.fifo,
          "ring": sampler.ring.capacity,
          "clock": "replay" if hw.replay else ("wall" if hw.sim else "chip")})
    return _loop(cfg, hw, pipe, decision, labels, sampler)


class Sampler:
    """The sampling path: the sensor's clocked buffer drained into one Ring, read errors
    counted (the driver re-created after reinit_after in a row), nothing allocated."""

    def __init__(self, cfg, hw, window, stride, channels):
        self.hw = hw
        sensor = hw.sensor
        self.rate = getattr(sensor, "rate_hz", sample_rate_f(cfg))
        # (num, den) us per sample: exact for the chips' clocks (3200 Hz: 625/2 us)
        self.period = getattr(sensor, "period", None) or (int(1000000 / self.rate), 1)
        self.period_us = self.period[0] // self.period[1]
        self.stride_us = stride * self.period[0] // self.period[1]
        self.fifo = getattr(sensor, "fifo_samples", 0)
        cap = int(cfg.get("sensor", {}).get("ring", 0))
        if not cap:
            # with a FIFO, the ring only carries samples from the FIFO to the pipeline (what
            # does not fit stays in the FIFO); without one, it is the only buffer: a quarter
            # second, at least two strides
            cap = 64 if self.fifo else max(2 * stride, int(self.rate) // 4, 64)
        self.ring = Ring(cap, channels)
        # longest nap between drains: a quarter of the buffer's time, 1..100 ms
        buf_us = (self.fifo or cap) * self.period_us
        nap = buf_us // 4
        self.nap_max = 1000 if nap < 1000 else (100000 if nap > 100000 else nap)
        self.reinit_after = int(cfg.get("reinit_after", 50))
        self.errors = 0
        self.consecutive = 0
        # a late window is skipped once this many samples wait behind it: a stride (the next
        # window is complete already) or half the FIFO, whichever is more, so a short stall
        # is caught up on without skipping anything
        self.skip_at = max(stride, (self.fifo or cap) // 2)
        self.t_ok = 0

    def start(self):
        self.hw.start(self.ring)
        self.t_ok = ticks_us()

    def drain(self):
        hw = self.hw
        try:
            n = hw.drain(self.ring)
        except OSError as exc:
            self.errors += 1
            self.consecutive += 1
            if self.consecutive == 1 or self.errors % 100 == 0:
                emit({"event": "sensor_error", "errno": exc.args[0] if exc.args else 0,
                      "errors": self.errors})
            if self.consecutive >= self.reinit_after:
                self.consecutive = 0
                try:
                    hw.sensor = hw.make_sensor()
                    # a new driver starts an empty FIFO: what the old one held is gone
                    gone = ticks_diff(ticks_us(), self.t_ok) // self.period_us
                    self.ring.lost += gone
                    self.ring.overflows += 1
                    hw.start(self.ring)
                    self.t_ok = ticks_us()
                    emit({"event": "sensor_reinit", "errors": self.errors, "lost": gone})
                except OSError:
                    pass
            return 0
        self.consecutive = 0
        self.t_ok = ticks_us()
        return n

    def backlog(self):
        """Samples taken but not yet in the pipeline (ring and sensor FIFO)."""
        try:
            return self.ring.count() + self.hw.sensor.waiting()
        except OSError:
            return self.ring.count()

    def nap(self, pipe):
        """Sleep until the next window can be complete (at most nap_max): the FIFO fills
        meanwhile; on a real board the CPU idles."""
        need = pipe.window - pipe.filled
        s = pipe.stride - pipe.since
        if s > need:
            need = s
        us = need * self.period_us
        if us > self.nap_max:
            us = self.nap_max
        due = self.hw.sensor.due_in()  # a sensor read on the sample clock: wake for it
        if 0 <= due < us:
            us = due
        if us > 0:
            self.hw.nap(us)


def _loop(cfg, hw, pipe, decision, labels, sampler):
    max_windows = int(cfg.get("max_windows", 0))
    max_ms = int(float(cfg.get("max_seconds", 0)) * 1000)
    t_start = ticks_ms()
    ring = sampler.ring
    channels = ring.channels
    stride = pipe.stride
    stride_us = sampler.stride_us
    # in real time, a window far behind is skipped (config "skip_late": false infers every
    # window, the FIFO absorbing what it can)
    realtime = not hw.replay
    catch_up = realtime and cfg.get("skip_late", True)
    seq = hw.seq
    sample = array("h", bytes(2 * channels))
    formed = 0  # windows the stream has completed (status "w": window k ends at sample
    skipped = 0  # k*stride + window); skipped: not inferred, the loop was too far behind
    overruns = 0  # windows whose work outlasted their stride
    alarm = False
    done = False
    skip_at = sampler.skip_at
    sampler.start()  # the sensor's clock runs from here: nothing before the loop delays it
    while not done:
        hw.feed()
        sampler.drain()
        while ring.get_into(sample):
            if seq is not None:
                seq.check(sample)
            if not pipe.push(sample):
                continue
            formed += 1
            sampler.drain()  # empty the FIFO first: it has its full depth for the inference
            if catch_up and sampler.backlog() >= skip_at:
                skipped += 1  # too far behind: this window is stale, the next is complete
                continue
            t0 = ticks_us()
            new_alarm = pipe.run()
            dt = ticks_diff(ticks_us(), t0)
            if new_alarm != alarm:
                alarm = new_alarm
                hw.actuate(alarm)
            gc.collect()  # the status line below is the only garbage; keep "free" meaningful
            busy = ticks_diff(ticks_us(), t0)
            if busy > stride_us:
                overruns += 1
            sampler.drain()
            hw.feed()
            d = decision
            if d.anomaly:
                label = "anomaly" if d.positive else cfg.get("healthy", "normal")
            else:
                label = labels[d.cls] if d.cls < len(labels) else d.cls
            st = {"w": formed, "cls": d.cls, "label": label,
                  "score": d.score, "pos": d.positive, "alarm": alarm, "us": dt,
                  "busy": busy, "lag": sampler.backlog(), "free": gc.mem_free(),
                  "errors": sampler.errors, "lost": ring.lost, "skipped": skipped,
                  "overruns": overruns}
            if seq is not None:
                seq.report(st)
            emit(st)
            if max_windows and formed >= max_windows or \
                    max_ms and ticks_diff(ticks_ms(), t_start) >= max_ms:
                done = True
                break
        if done or hw.finished():
            break
        if realtime:
            sampler.nap(pipe)
    end = {"event": "end", "windows": formed, "inferred": pipe.windows, "errors": sampler.errors,
           "alarm": alarm, "actuations": hw.actuations, "lost": ring.lost,
           "overflows": ring.overflows, "skipped": skipped, "overruns": overruns,
           "samples": ring.read}
    if seq is not None:
        seq.report(end)
    emit(end)
    return pipe
