# Standalone application: sensor -> pipeline -> relay/LED, with JSON-lines status on the console.
#
# The board's parts (sensor drivers or their simulated chips, pins, watchdog) are
# hardware.Hardware; the sampling path (sensor FIFO -> Ring, read errors) is sampling.Sampler;
# this module builds the pipeline and runs the loop.
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
# On the virtual board in real time the host's scheduler may not run the process for a while:
# the status line's "wait" (us of a window's work the host kept it waiting), the end event's
# gap_max_us / own_gap_max_us (longest time between two drains, and the same less host waits)
# and each "overflow" event's gap_us / wait_us tell a host stall from the board's own delay.
#
# config.json keys read here (the trainer's device config plus board facts added by deploy):
#   model ("model.elb"), sample_rate (Hz), counts_per_unit (sets the accelerometer range the
#   model was trained at), window, stride, labels, preprocess (preprocess.Preprocessor's table;
#   absent: raw window quantized to the model input), decision {fault_classes, threshold or
#   threshold_q, n, m, action ("stop" latches), latch}, pins {sda, scl, relay, led, adc},
#   sensor {kind: mpu6050|adxl345|analog, axes (3, or 6: the MPU6050's gyroscope too),
#   gyro_dps, addr, range_g, i2c, freq, sim (sample file, virtual board), sim_units,
#   sim_gyro_units10, sim_clock ("wall": samples in real time, or "replay": as fast as the
#   app drains them), sim_seq (hide sequence numbers for the realtime bench), sim_speed (a
#   sensor list's world played that many times faster than real time), ring (samples),
#   fail_every}, actuator {pin, led, active_high}, watchdog (true),
#   watchdog_ms (5000), max_windows (0: forever), max_seconds (0: forever), reinit_after (50
#   consecutive read errors),
#   skip_late (true: a window the loop is far behind on is skipped, not inferred),
#   field {uncertain (8), alarms (4), file ("field.bin"), persist_ms (5000)} (field.py: the
#   windows kept for `edgeloop collect --field`; false: none).
import gc
import json
import sys

from array import array

import elrt
import hardware
from decision import Decision
from hardware import Hardware
from pipeline import Pipeline, PreprocessFeatures, RawFeatures
from sampling import Sampler

try:
    from time import ticks_diff, ticks_ms, ticks_us
except ImportError:  # pragma: no cover - every MicroPython port has them
    ticks_ms = ticks_us = ticks_diff = None


def load_config(path="config.json"):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        return {}


publish = None  # the fleet's hook (net/node.py), set by main.py when config.json has "fleet"
pipeline = None  # the running Pipeline and the sensor's g per count, for the fleet's `collect`
sensor_scale = 1.0
kept = None  # the field.FieldRing of kept windows, when config.json asks for one


def emit(obj):
    sys.stdout.write(json.dumps(obj))
    sys.stdout.write("\n")
    if publish is not None:
        publish(obj)


def main(cfg=None):
    try:
        return _main(cfg if cfg is not None else load_config())
    except KeyboardInterrupt:
        if hardware.active is not None:
            hardware.active.maintenance()
        if kept is not None:
            kept.persist(True)
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
    hw = Hardware(cfg, emit)
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
    acts = None
    if cfg.get("actions"):  # named outputs; without them the decision drives the relay/LED
        from actions import on_board

        acts = on_board(cfg, hw, model, n_out, channels)
    if hw.host_wait is not None:  # the virtual board in real time: host stalls measured
        from simhw.hostwait import HostSampler

        sampler = HostSampler(cfg, hw, window, stride, channels, hw.host_wait)
    else:
        sampler = Sampler(cfg, hw, window, stride, channels)
    gc.collect()
    global kept
    if cfg.get("field") is not False:  # the kept windows (fieldstart.py: start-time code)
        try:
            import fieldstart

            parts = fieldstart.start(cfg, model, decision, window, stride, channels,
                                     sampler.rate, emit)
            fieldstart = None  # off the heap before the ring's own module comes in
            gc.collect()
            if parts is not None:
                from field import FieldRing

                kept = FieldRing(*parts)
                kept.persist(True)  # the new boot
        except MemoryError:  # the model comes first: run without field windows, say so
            emit({"event": "field_off", "free": gc.mem_free()})
        parts = None
        gc.collect()
    emit({"event": "start", "kernels": elrt.KERNELS, "window": window, "stride": stride,
          "channels": channels, "outputs": n_out, "sim": hw.sim, "free": gc.mem_free(),
          "rate": sampler.rate, "stride_us": sampler.stride_us, "fifo": sampler.fifo,
          "ring": sampler.ring.capacity, "field": kept.s[0] + kept.s[1] if kept else 0,
          "clock": "replay" if hw.replay else ("wall" if hw.sim else "chip"),
          "actions": [a.name for a in acts.items] if acts is not None else []})
    return _loop(cfg, hw, pipe, decision, labels, sampler, acts)


def _loop(cfg, hw, pipe, decision, labels, sampler, acts=None):
    max_windows = int(cfg.get("max_windows", 0))
    max_ms = int(float(cfg.get("max_seconds", 0)) * 1000)
    t_start = ticks_ms()
    ring = sampler.ring
    channels = ring.channels
    stride = pipe.stride
    stride_us = sampler.stride_us
    per_num = sampler.period[0]  # a window ends at (window + k*stride) * per_num // per_den ms
    per_den = sampler.period[1] * 1000  # of the stream: the actions' clock (replay or wall)
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
            w0 = sampler.wait_us()
            new_alarm = pipe.run()
            dt = ticks_diff(ticks_us(), t0)
            raised = new_alarm and not alarm
            if acts is not None:  # named outputs on the window's latest sample, stream time
                t_ms = (pipe.window + (formed - 1) * stride) * per_num // per_den
                raised = acts.act(pipe.model.output, sample, t_ms, formed, emit)
                alarm = acts.stopped
            if kept is not None:  # the window raising the alarm, or one the model doubted
                kept.offer(pipe.win, pipe.model.output, raised, formed,
                           (ring.read + ring.lost) & 0xFFFFFFF)
            if acts is None and new_alarm != alarm:
                alarm = new_alarm
                hw.actuate(alarm)
            gc.collect()  # the status line below is the only garbage; keep "free" meaningful
            busy = ticks_diff(ticks_us(), t0)
            if busy > stride_us:
                overruns += 1
            # the virtual board's host may have kept the process waiting meanwhile: that part
            # of busy is the host's, not the board's work (status "wait"; 0 on a real board)
            waited = (sampler.wait_us() - w0) % 100000000
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
            if acts is not None:
                st["out"] = [a.level for a in acts.items]
            if sampler.host is not None:
                st["wait"] = waited
            if seq is not None:
                seq.report(st)
            emit(st)
            if kept is not None:
                kept.persist()  # the ring's counters, every persist_ms
            if max_windows and formed >= max_windows or \
                    max_ms and ticks_diff(ticks_ms(), t_start) >= max_ms:
                done = True
                break
        if done or hw.finished():
            break
        if realtime:
            sampler.nap(pipe)
    gc.collect()  # the end event's dict and text: room for them on a fragmented heap
    end = {"event": "end", "windows": formed, "inferred": pipe.windows, "errors": sampler.errors,
           "alarm": alarm, "actuations": hw.actuations, "lost": ring.lost,
           "overflows": ring.overflows, "skipped": skipped, "overruns": overruns,
           "samples": ring.read}
    if acts is not None:
        end["actuations"] = [a.switchings for a in acts.items]
        end["alerts"] = sum(getattr(a, "alerts", 0) for a in acts.items)
    if sampler.host is not None:
        end["gap_max_us"] = sampler.gap_max
        end["own_gap_max_us"] = sampler.own_gap_max
        end["wait_us"] = sampler.waited
    if seq is not None:
        seq.report(end)
    if kept is not None:
        kept.persist(True)
        end["field"] = kept.s[12]
    emit(end)
    return pipe
