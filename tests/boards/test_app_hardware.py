"""The app's real-hardware path (machine.I2C/Pin/WDT/Timer) on the virtual board.

A stand-in `machine` module is put in sys.modules before the app imports it: its I2C is the
simulated bus with an MPU6050, so everything from pin numbers to the watchdog is exercised
as on an ESP32 (the chip's FIFO is topped up whenever the driver looks: a loaded host never
makes this test lose samples; tests/boards/test_realtime_sampling.py clocks it). The source
ends after 200 samples; a watchdog feed once they are all processed raises KeyboardInterrupt,
as Ctrl-C from mpremote does.
"""

from __future__ import annotations

import json

from edgeloop.boards import get_board
from edgeloop.link import deploy as dp
from edgeloop.link.virtual import VirtualTransport

SCRIPT = r"""
import sys
from array import array
from simhw.chips import SimMPU6050
from simhw.i2c import I2C as SimI2C
from simhw.source import ArraySource
import simhw.pins as sp

CHIP = SimMPU6050(ArraySource(array('h', [0, 0, 1000] * 200)), units=1000)  # FIFO topped up
log = {'i2c': None, 'wdt': None, 'timer': None, 'pins': {}}

class I2C(SimI2C):
    def __init__(self, id, sda=None, scl=None, freq=0):
        SimI2C.__init__(self, [CHIP])
        log['i2c'] = (id, sda.id, scl.id, freq)

class Pin(sp.Pin):
    def __init__(self, id, mode=-1, value=None):
        sp.Pin.__init__(self, id, mode, value)
        log['pins'][id] = self

class WDT(sp.WDT):
    def __init__(self, id=0, timeout=5000):
        sp.WDT.__init__(self, id, timeout)
        log['wdt'] = self

    def feed(self):
        sp.WDT.feed(self)
        if CHIP.exhausted and not CHIP.pending() and log['timer'] is None:
            log['idle'] = log.get('idle', 0) + 1
            if log['idle'] == 5:  # Ctrl-C once the 200 samples are taken and processed
                raise KeyboardInterrupt

class Timer:
    PERIODIC = 1
    def __init__(self, id):
        self.id = id
        log['timer'] = self
    def init(self, period, mode, callback):
        self.period, self.callback = period, callback

class FakeMachine:
    pass

for k in ('I2C', 'Pin', 'WDT', 'Timer'):
    setattr(FakeMachine, k, globals()[k])
sys.modules['machine'] = FakeMachine
import app
cfg = {"sample_rate": 1000, "counts_per_unit": 16384, "window": 32, "stride": 32,
       "skip_late": False,
       "pins": {"sda": 21, "scl": 22, "relay": 26, "led": 2}, "watchdog_ms": 3000,
       "decision": {"n": 1, "m": 1, "threshold": 0.0, "fault_classes": [0, 1, 2]}}
try:
    app.main(cfg)
except KeyboardInterrupt:
    print('interrupted')
w = log['wdt']
fed = w.feeds
log['timer'].callback(log['timer'])
import json
print(json.dumps({'i2c': log['i2c'], 'timeout': w.timeout, 'fed': fed, 'fed_after': w.feeds,
    'timer': [log['timer'].id, log['timer'].period], 'pins': sorted(log['pins']),
    'relay': log['pins'][26].value(), 'led': log['pins'][2].value()}))
"""


def test_real_hardware_path_with_watchdog_and_ctrl_c(tmp_path, bundles) -> None:
    src = tmp_path / "m.elb"
    src.write_bytes(bundles[0])
    board = VirtualTransport(tmp_path / "vb", get_board("virtual"))
    dp.deploy(board, dp.plan_deploy(src, get_board("virtual"), virtual=True,
                                  config=dp.DEFAULT_DEVICE_CONFIG), verify=False)
    lines = board.exec(SCRIPT).strip().splitlines()
    start = json.loads(lines[0])
    assert start["event"] == "start" and start["sim"] is False
    status = [json.loads(x) for x in lines[1:] if x.startswith("{") and '"w"' in x]
    assert [s["w"] for s in status] == [1, 2, 3, 4, 5, 6]  # 200 samples / 32
    assert json.loads(lines[-3]) == {"event": "stopped"}
    assert lines[-2] == "interrupted"
    got = json.loads(lines[-1])
    assert got["i2c"] == [0, 21, 22, 400000]  # bus 0 on the config's pins at 400 kHz
    assert got["timeout"] == 3000
    assert got["fed"] >= 6  # on every pass of the sampling loop (each window at least)
    assert got["timer"] == [0, 1000] and got["fed_after"] == got["fed"] + 1  # by the timer
    assert got["pins"] == [2, 21, 22, 26]
    assert got["relay"] == 1 and got["led"] == 1  # the alarm switched relay and LED on


def test_pacing_holds_its_period_across_the_ticks_wrap(fw_board) -> None:
    """The sample clock of a sensor without a FIFO (polled.Polled, the sensor list) on an
    injected clock that starts 2.5 ms before the board's ticks wrap (2**30 us on a 32-bit
    board, as an ESP32, after ~18 minutes): every read stays one period apart through the
    wrap, nothing is counted lost, deadlines stay small ints (a `+=` deadline turns into a big
    int past the wrap and ticks_diff misreads it: the loop stalls)."""
    code = (
        "import time\n"
        "from array import array\n"
        "from polled import Polled\n"
        "from sampling import Ring\n"
        "t = [time.ticks_add(0, -2500)]\n"
        "calls = [0]\n"
        "def clock():\n"
        "    calls[0] += 1\n"
        "    if calls[0] > 200000:\n"
        "        raise RuntimeError('the sample clock stalled')\n"
        "    t[0] = time.ticks_add(t[0], 7)\n"
        "    return t[0]\n"
        "class Stub:\n"
        "    channels = 1\n"
        "    scale_g = 1.0\n"
        "    def read_raw_into(self, out, off=0):\n"
        "        out[off] = 1\n"
        "p = Polled(Stub(), 10000, True, clock)\n"
        "ring = Ring(8, 1)\n"
        "s = array('h', [0])\n"
        "p.start()\n"
        "prev = None\n"
        "gaps = []\n"
        "wrapped = 0\n"
        "reads = 0\n"
        "while reads < 100:\n"
        "    if not p.drain(ring):\n"
        "        continue\n"
        "    ring.get_into(s)\n"
        "    if reads > 1:\n"
        "        gaps.append(time.ticks_diff(t[0], prev))\n"
        "        wrapped += t[0] < prev\n"
        "    prev = t[0]\n"
        "    reads += 1\n"
        "print('PACE', ring.lost, min(gaps), max(gaps), wrapped, type(p.next_t) is int,"
        " p.next_t == time.ticks_add(p.next_t, 0))\n"
    )
    out = fw_board.run(code, timeout=60, heap_bytes=1 << 20).check("pacing").stdout.split()
    i = out.index("PACE")
    lost, lo, hi, wrapped, _, in_range = out[i + 1:i + 7]
    assert lost == "0" and wrapped == "1"
    assert 100 - 7 * 3 < int(lo) and int(hi) < 100 + 7 * 3  # each read within a few clock steps
    assert in_range == "True", "the deadline left the ticks range"
