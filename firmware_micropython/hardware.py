# The board's parts for the standalone app: the sensor driver(s) (or, on the virtual board, the
# simulated chips in simhw/ fed from a sample file), relay and LED pins, the watchdog.
#
# Hardware comes from machine (I2C, Pin, ADC, WDT) on a real board; where machine has no I2C
# (the virtual board) or the config asks for it ("sensor": {"sim": FILE}), the simulated chips
# play the sensor and pins record what was switched. A sensor missing at power-up is reported
# and retried; the relay stays off meanwhile. config.json keys: see app.py.
import time

try:
    from time import sleep_us, ticks_us
except ImportError:  # pragma: no cover - every MicroPython port has them
    sleep_us = ticks_us = None


_MPU_RANGE = {16384: 2, 8192: 4, 4096: 8, 2048: 16}

active = None  # the Hardware in use (its watchdog is running): app.main keeps it fed on Ctrl-C


def sample_rate_f(cfg):
    """The rate as a float: building sensors sample slower than 1 Hz (1/60)."""
    return float(cfg.get("sample_rate_hz", cfg.get("sample_rate", 1000)))


class Hardware:
    """The board's parts: sensor driver(s), relay and LED pins, watchdog."""

    def __init__(self, cfg, emit):
        import sys

        import fifosensor  # one-shot config code: dropped again once used (heap)

        fifosensor.adopt(cfg)
        del sys.modules["fifosensor"]
        fifosensor = None
        self.cfg = cfg
        self.emit = emit  # the app's status line (events: sensor_missing)
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
        self.outputs = {}  # virtual board: the actions' pins by number (simhw.answer reads them)
        self.host_wait = None  # virtual board in real time: the host's run-queue wait
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
        global active
        active = self  # so Ctrl-C anywhere after this point keeps the watchdog fed
        acfg = cfg.get("actuator", {})
        self.active_high = acfg.get("active_high", True)
        relay_pin = acfg.get("pin", pins.get("relay"))
        led_pin = acfg.get("led", pins.get("led"))
        self.Pin = Pin  # machine.Pin, or the virtual board's recording simhw.pins.Pin
        if cfg.get("actions"):  # the run's [[actions]] own the outputs (output()), not the
            relay_pin = led_pin = None  # decision's relay/LED: the same GPIO twice would fight
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
                    self.emit({"event": "sensor_missing", "errno": exc.args[0] if exc.args else 0,
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
        if not self.replay:  # the evidence that tells a host stall from the board's own delay
            from simhw.hostwait import host_wait

            self.host_wait = host_wait()
        if "sensors" in self.cfg:  # every sensor's simulated chip, fed from one sample file
            from simhw.world import sim_bus

            specs = self.cfg["sensors"]
            n = 0
            for spec in specs:
                n += len(spec["channels"])
            self.source = FileSource(scfg.get("sim", "samples.s16"), n, scfg.get("loop", False))
            seq = bool(scfg.get("sim_seq", False)) and n >= 3
            if seq:
                from simhw.seq import SeqCheck

                self.seq = SeqCheck()
            bus, self.row = sim_bus(specs, self.source, n, int(1000 / sample_rate_f(self.cfg)),
                                    seq)
            bus.fail_every = int(scfg.get("fail_every", 0))
            if scfg.get("sim_answer"):  # the room warms when the board heats (simhw/answer.py)
                from simhw.answer import Answer

                self.row.answer = Answer(scfg["sim_answer"], self._level)
            return lambda spec_bus: bus

        channels = 1 if scfg.get("kind") == "analog" else int(scfg.get("axes", 3))
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
        elif channels == 6:  # the 6-axis IMU: accelerometer and gyroscope frames
            from simhw.imu import SimMPU6050IMU

            self.chip = SimMPU6050IMU(self.source, scfg.get("addr", 0x68), units,
                                      int(scfg.get("sim_gyro_units10", 10)), clock, seq)
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

            # no FIFO behind the list: read on the sample clock (as fast as drained in replay).
            # The virtual board may play a slow world faster than real time (sensor.sim_speed:
            # the building's one sample a minute every 200 ms at 300): the reads are paced at
            # rate * speed in wall-clock time, the world's own time (row.t_ms) at the rate.
            rate = sample_rate_f(self.cfg)
            speed = float(self.cfg.get("sensor", {}).get("sim_speed", 1)) if self.sim else 1.0
            p = Polled(Sensors(self.cfg["sensors"], self.i2c, rate, self.row), rate * speed,
                       not self.replay)
            if self.row is not None and self.row.answer is not None:
                p.burst = 1  # replay a world that answers one sample ahead of the actions
            return p
        scfg = self.cfg.get("sensor", {})
        kind = scfg.get("kind", "mpu6050")
        # The model was trained on counts at counts_per_unit: set the range that gives them.
        cpu = self.cfg.get("counts_per_unit")
        cpu0 = cpu[0] if isinstance(cpu, list) else cpu  # the accelerometer's (then the gyro's)
        if kind == "mpu6050":
            from drivers.mpu6050 import MPU6050

            rng = scfg.get("range_g") or _MPU_RANGE.get(int(cpu0 or 16384))
            if rng is None:
                raise ValueError("counts_per_unit %s is no MPU6050 range (16384, 8192, 4096, 2048)" % cpu0)
            if int(scfg.get("axes", 3)) == 6:
                from drivers.mpu6050_imu import MPU6050IMU

                sensor = MPU6050IMU(self.i2c, scfg.get("addr", 0x68), rng,
                                    int(scfg.get("gyro_dps", 1000)), sample_rate_f(self.cfg))
            else:
                sensor = MPU6050(self.i2c, scfg.get("addr", 0x68), rng, sample_rate_f(self.cfg))
        elif kind == "adxl345":
            from drivers.adxl345 import ADXL345

            sensor = ADXL345(self.i2c, scfg.get("addr", 0x53), scfg.get("range_g", 16),
                             sample_rate_f(self.cfg))
        else:
            sensor = None
        if sensor is not None:
            if cpu0 and int(cpu0) != sensor.lsb_per_g:
                raise ValueError("model trained at %s counts/g but the %s gives %d" % (cpu0, kind, sensor.lsb_per_g))
            dps = getattr(sensor, "lsb_per_dps", 0)
            if dps and isinstance(cpu, list) and len(cpu) == 6 and abs(cpu[3] - dps) > 1e-6 * dps:
                raise ValueError("model trained at %s counts per deg/s but the %s gives %s" % (cpu[3], kind, dps))
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

    def output(self, pin):
        """An action's output pin (None: an event only, no pin), off until the action acts."""
        if pin is None:
            return None
        p = self.Pin(pin, self.Pin.OUT)
        if self.sim:
            self.outputs[pin] = p  # what the simulated world answers (_level)
        return p

    def _level(self, pin):
        p = self.outputs.get(pin)
        return p.value() if p is not None else 0

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
