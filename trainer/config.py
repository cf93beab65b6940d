"""The project config file, edgeloop.toml: one declaration drives training and the board.

Tables: [project] name, task (classify | anomaly); [sensor] channels, sample_rate,
counts_per_unit (sensor counts per physical unit, e.g. 2048 for an MPU6050 at +-16 g),
timestamp_column, label_column; [window] size (8..8192 samples), stride; [features] chain
(ordered blocks from dc, mean, rms, peak, raw, fft), fft_bins, fft_compress (none | sqrt),
raw_decimate, shift ("auto" or 0..8); [labels] classes, healthy; [model] name, epochs,
batch_size, learning_rate, seed, qat; [decision] fault_classes, threshold, n, m, action;
[board] profile; [[sensors]] (optional, trainer/sensors.py): one table per sensor with driver,
channels, reads, range, rate, bus; the run's channels and counts_per_unit then follow from them;
[[actions]] (optional, trainer/actions.py): named stop / alert / control outputs.

`device_config(cfg)` turns a config plus its training-time calibration (trainer.features) into
config.json for the board: the preprocessing parameters and the model input's int8 quantization,
so the board computes exactly the model input the host computed.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from trainer.actions import device_actions, parse_actions
from trainer.errors import TrainerError
from trainer.features import (
    BLOCKS,
    WINDOW_MAX,
    WINDOW_MIN,
    Calibration,
    FeatureSpec,
    decimate_problem,
    fft_bins_problem,
    fft_size,
    twiddles,
)
from trainer.sensors import SensorSpec, parse_sensors

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MODELS = ("mlp", "cnn1d", "dscnn", "autoencoder")
BOARD_PROFILES = ("esp32", "esp32s3", "esp32c3", "virtual")  # edgeloop.boards (no import upward)


@dataclass(frozen=True)
class ModelSpec:
    name: str = "mlp"
    epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 3e-3
    seed: int = 0
    qat: bool = False


@dataclass(frozen=True)
class DecisionSpec:
    """Act when `n` of the last `m` windows are a fault class with probability >= threshold."""

    fault_classes: tuple[str, ...] = ()
    threshold: float = 0.8
    n: int = 3
    m: int = 5
    action: str = "stop"


@dataclass(frozen=True)
class Config:
    name: str = "edgeloop-project"
    task: str = "classify"
    channels: tuple[str, ...] = ("ax", "ay", "az")
    sample_rate: float = 1000.0
    counts_per_unit: float | tuple[float, ...] = 2048.0  # one for all channels, or per channel
    timestamp_column: str | None = "timestamp"
    label_column: str | None = None
    window: int = 256
    stride: int = 128
    features: FeatureSpec = field(default_factory=FeatureSpec)
    classes: tuple[str, ...] | None = None
    healthy: str | None = None
    model: ModelSpec = field(default_factory=ModelSpec)
    decision: DecisionSpec = field(default_factory=DecisionSpec)
    board: str = "esp32"
    source: str = "<defaults>"
    calibration: Calibration | None = None
    sensors: tuple[SensorSpec, ...] = ()  # [[sensors]]; empty: one sensor implied by channels
    actions: tuple[dict, ...] = ()  # [[actions]] (trainer/actions.py); empty: [decision] only

    def with_(self, **kw: Any) -> Config:
        return replace(self, **kw)

    @property
    def input_shape(self) -> tuple[int, int]:
        return (self.features.n_rows(self.window), len(self.channels))


_SCHEMA: dict[str, dict[str, tuple[type, ...]]] = {
    "project": {"name": (str,), "task": (str,)},
    "sensor": {
        "channels": (list,), "sample_rate": (int, float), "counts_per_unit": (int, float, list),
        "timestamp_column": (str,), "label_column": (str,),
    },
    "window": {"size": (int,), "stride": (int,)},
    "features": {
        "chain": (list,), "fft_bins": (int,), "fft_compress": (str,), "raw_decimate": (int,),
        "shift": (int, str),
    },
    "labels": {"classes": (list,), "healthy": (str,)},
    "model": {
        "name": (str,), "epochs": (int,), "batch_size": (int,), "learning_rate": (int, float),
        "seed": (int,), "qat": (bool,),
    },
    "decision": {
        "fault_classes": (list,), "threshold": (int, float), "n": (int,), "m": (int,),
        "action": (str,),
    },
    "board": {"profile": (str,)},
}


def _err(src: str, key: str, msg: str) -> TrainerError:
    return TrainerError(f"{src}: [{key}] {msg}")


def _check_types(raw: dict, src: str) -> None:
    for table, body in raw.items():
        if table in ("sensors", "actions"):  # [[sensors]], [[actions]]: checked on their own
            continue
        if table not in _SCHEMA:
            raise _err(src, table, f"unknown table; known: {', '.join(_SCHEMA)}, [[sensors]], [[actions]]")
        if not isinstance(body, dict):
            raise _err(src, table, "must be a table")
        for key, value in body.items():
            kinds = _SCHEMA[table].get(key)
            if kinds is None:
                known = ", ".join(_SCHEMA[table])
                raise _err(src, f"{table}.{key}", f"unknown key; known in [{table}]: {known}")
            if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
                want = " or ".join(k.__name__ for k in kinds)
                raise _err(src, f"{table}.{key}", f"must be {want}, got {value!r}")


def _str_list(value: list, src: str, key: str) -> tuple[str, ...]:
    if not value or not all(isinstance(v, str) and v for v in value):
        raise _err(src, key, f"must be a non-empty list of names, got {value!r}")
    if len(set(value)) != len(value):
        raise _err(src, key, f"has duplicates: {value!r}")
    return tuple(value)


def parse_config(raw: dict, src: str = "<dict>") -> Config:
    """Validate a parsed TOML dict; errors name the file and the key."""
    _check_types(raw, src)
    g = lambda t, k, d=None: raw.get(t, {}).get(k, d)  # noqa: E731
    base = Config()
    task = g("project", "task", base.task)
    if task not in ("classify", "anomaly"):
        raise _err(src, "project.task", f"must be 'classify' or 'anomaly', got {task!r}")
    channels = _str_list(g("sensor", "channels", list(base.channels)), src, "sensor.channels")
    rate = float(g("sensor", "sample_rate", base.sample_rate))
    if rate <= 0:
        raise _err(src, "sensor.sample_rate", f"must be > 0, got {rate}")
    cpu = g("sensor", "counts_per_unit", base.counts_per_unit)
    cpus = cpu if isinstance(cpu, list) else [cpu]
    if isinstance(cpu, list) and len(cpu) != len(channels):
        raise _err(src, "sensor.counts_per_unit", f"needs one value per channel ({len(channels)})")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in cpus):
        raise _err(src, "sensor.counts_per_unit", f"must be > 0, got {cpu!r}")
    cpu = tuple(float(v) for v in cpu) if isinstance(cpu, list) else float(cpu)
    sensors: tuple[SensorSpec, ...] = ()
    if "sensors" in raw:
        sensors = parse_sensors(raw["sensors"], src, rate)
        channels, cpu = _from_sensors(raw, sensors, channels, cpu, src)
    size = g("window", "size", base.window)
    if not WINDOW_MIN <= size <= WINDOW_MAX:
        raise _err(src, "window.size", f"must be {WINDOW_MIN}..{WINDOW_MAX} samples, got {size}")
    stride = g("window", "stride", size // 2)
    if not 1 <= stride:
        raise _err(src, "window.stride", f"must be >= 1, got {stride}")
    chain = _str_list(g("features", "chain", list(base.features.chain)), src, "features.chain")
    for b in chain:
        if b != "dc" and b not in BLOCKS:
            raise _err(src, "features.chain", f"unknown step {b!r}; known: dc, {', '.join(BLOCKS)}")
    if chain == ("dc",):
        raise _err(src, "features.chain", "needs at least one output block besides dc")
    if "dc" in chain:
        first_signal = min((chain.index(b) for b in chain if b in ("raw", "rms", "peak", "fft")),
                           default=len(chain))
        if chain.index("dc") > first_signal:
            raise _err(src, "features.chain", "'dc' must come before raw/rms/peak/fft")
    bins = g("features", "fft_bins", None)
    if bins is None:  # the default adapts to the window: 16 bands, fewer for a short one
        bins = min(base.features.fft_bins, fft_size(size) // 2)
    if "fft" in chain and (why := fft_bins_problem(size, bins)):
        raise _err(src, "features.fft_bins", f"{why} (window.size = {size})")
    compress = g("features", "fft_compress", base.features.fft_compress)
    if compress not in ("none", "sqrt"):
        raise _err(src, "features.fft_compress", f"must be 'none' or 'sqrt', got {compress!r}")
    dec = g("features", "raw_decimate", 1)
    if why := decimate_problem(size, dec):
        raise _err(src, "features.raw_decimate", f"{why} (window.size = {size})")
    shift = g("features", "shift", "auto")
    if shift == "auto":
        shift = None
    elif not isinstance(shift, int) or not 0 <= shift <= 8:
        raise _err(src, "features.shift", f"must be 'auto' or 0..8, got {shift!r}")
    feats = FeatureSpec(chain, bins, compress, dec, shift)
    classes = g("labels", "classes")
    classes = _str_list(classes, src, "labels.classes") if classes is not None else None
    healthy = g("labels", "healthy")
    if healthy is not None and classes is not None and healthy not in classes:
        raise _err(src, "labels.healthy", f"{healthy!r} is not one of labels.classes")
    if task == "anomaly" and healthy is None:
        raise _err(src, "labels.healthy", "an anomaly task needs the healthy class name")
    mname = g("model", "name", "autoencoder" if task == "anomaly" else "mlp")
    if mname not in MODELS:
        raise _err(src, "model.name", f"unknown model {mname!r}; known: {', '.join(MODELS)}")
    if (mname == "autoencoder") != (task == "anomaly"):
        raise _err(src, "model.name", f"model {mname!r} does not fit task {task!r}")
    model = ModelSpec(
        mname,
        g("model", "epochs", base.model.epochs),
        g("model", "batch_size", base.model.batch_size),
        float(g("model", "learning_rate", base.model.learning_rate)),
        g("model", "seed", base.model.seed),
        g("model", "qat", False),
    )
    for k in ("epochs", "batch_size"):
        if getattr(model, k) < 1:
            raise _err(src, f"model.{k}", f"must be >= 1, got {getattr(model, k)}")
    fault = g("decision", "fault_classes")
    if fault is None:
        fault = [c for c in (classes or ()) if c != healthy]
    fault = tuple(fault)
    if classes is not None:
        for f in fault:
            if f not in classes:
                raise _err(src, "decision.fault_classes", f"{f!r} is not one of labels.classes")
    n, m = g("decision", "n", 3), g("decision", "m", 5)
    if not 1 <= n <= m <= 32:
        raise _err(src, "decision", f"need 1 <= n <= m <= 32, got n={n}, m={m}")
    thr = float(g("decision", "threshold", 0.8))
    if not 0.0 < thr <= 1.0:
        raise _err(src, "decision.threshold", f"must be in (0, 1], got {thr}")
    decision = DecisionSpec(fault, thr, n, m, g("decision", "action", "stop"))
    board = g("board", "profile", base.board)
    if board not in BOARD_PROFILES:
        raise _err(src, "board.profile", f"unknown board {board!r}; known: {', '.join(BOARD_PROFILES)}")
    actions = parse_actions(raw["actions"], src, channels, classes) if "actions" in raw else ()
    return Config(
        name=g("project", "name", base.name), task=task, channels=channels, sample_rate=rate,
        counts_per_unit=cpu, timestamp_column=g("sensor", "timestamp_column", "timestamp"),
        label_column=g("sensor", "label_column"), window=size, stride=stride, features=feats,
        classes=classes, healthy=healthy, model=model, decision=decision, board=board, source=src,
        sensors=sensors, actions=actions,
    )


def _from_sensors(raw: dict, sensors: tuple[SensorSpec, ...], channels: tuple[str, ...],
                  cpu: float | tuple[float, ...], src: str):
    """The run's channels and counts per unit are the sensors'; [sensor] may repeat them."""
    names = tuple(c for s in sensors for c in s.channels)
    counts = tuple(v for s in sensors for v in s.counts_per_unit)
    given = raw.get("sensor", {})
    if "channels" in given and channels != names:
        raise _err(src, "sensor.channels", f"{list(channels)} differs from the [[sensors]]' "
                   f"channels {list(names)} (drop it, or make them agree)")
    if "counts_per_unit" in given:
        have = cpu if isinstance(cpu, tuple) else (cpu,) * len(names)
        if len(have) != len(counts) or any(
                abs(a - b) > 1e-9 * b for a, b in zip(have, counts, strict=True)):
            raise _err(src, "sensor.counts_per_unit", f"{list(have)} differs from what the sensors "
                       f"report at their ranges: {list(counts)} (drop it: it follows from them)")
    return names, (counts[0] if len(set(counts)) == 1 else counts)


def load_config(path: Path | str) -> Config:
    """Read and validate edgeloop.toml."""
    p = Path(path)
    if not p.is_file():
        raise TrainerError(f"{p}: config file not found")
    try:
        raw = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise TrainerError(f"{p}: not valid TOML: {exc}") from None
    return parse_config(raw, str(p))


def to_toml(cfg: Config) -> str:
    """The config written back as TOML (the run folder keeps what it was trained with)."""

    def v(x: Any) -> str:
        if isinstance(x, bool):
            return "true" if x else "false"
        if isinstance(x, str):
            return json.dumps(x)
        if isinstance(x, (list, tuple)):
            return "[" + ", ".join(v(i) for i in x) + "]"
        return repr(x)

    f = cfg.features
    tables: dict[str, dict[str, Any]] = {
        "project": {"name": cfg.name, "task": cfg.task},
        "sensor": {"channels": cfg.channels, "sample_rate": cfg.sample_rate,
                   "counts_per_unit": cfg.counts_per_unit, "timestamp_column": cfg.timestamp_column,
                   "label_column": cfg.label_column},
        "window": {"size": cfg.window, "stride": cfg.stride},
        "features": {"chain": f.chain, "fft_bins": f.fft_bins, "fft_compress": f.fft_compress,
                     "raw_decimate": f.raw_decimate, "shift": "auto" if f.shift is None else f.shift},
        "labels": {"classes": cfg.classes, "healthy": cfg.healthy},
        "model": {k: getattr(cfg.model, k) for k in ModelSpec.__dataclass_fields__},
        "decision": {k: getattr(cfg.decision, k) for k in DecisionSpec.__dataclass_fields__},
        "board": {"profile": cfg.board},
    }
    lines = []
    for t, body in tables.items():
        lines.append(f"[{t}]")
        lines += [f"{k} = {v(x)}" for k, x in body.items() if x is not None]
        lines.append("")
    lines += [s.to_toml() for s in cfg.sensors]
    for a in cfg.actions:
        lines += ["[[actions]]", *(f"{k} = {v(x)}" for k, x in a.items()), ""]
    return "\n".join(lines)


def preprocess_config(cfg: Config, cal: Calibration) -> dict:
    """The board's preprocessing parameters (firmware_micropython/preprocess.py)."""
    if cal.mult is None:
        raise TrainerError(f"{cfg.source}: calibration has no model input quantization yet")
    rows_c = len(cfg.channels)
    blocks = []
    r0 = 0
    for kind, rows in cfg.features.rows(cfg.window):
        sl = slice(r0, r0 + (1 if kind == "raw" else rows))
        b: dict[str, Any] = {
            "kind": kind, "rows": rows,
            "off": cal.offset[sl].ravel().astype(int).tolist(),
            "mult": cal.mult[sl].ravel().astype(int).tolist(),
            "sh": cal.sh[sl].ravel().astype(int).tolist(),
        }
        if kind == "raw":
            b["decimate"] = cfg.features.raw_decimate
        if kind == "fft":
            b["bins"] = cfg.features.fft_bins
            b["compress"] = cfg.features.fft_compress
        blocks.append(b)
        r0 += rows
    d = {
        "window": cfg.window, "channels": rows_c, "dc": cfg.features.dc, "shift": cal.shift,
        "blocks": blocks, "input_shape": list(cfg.input_shape),
        "input_scale": cal.input_scale, "input_zero_point": cal.input_zero_point,
    }
    if "fft" in cfg.features.blocks:
        d["twiddle"] = twiddles(fft_size(cfg.window)).astype(int).tolist()
    return d


def device_config(cfg: Config, output_quant: tuple[float, int] | None = None) -> dict:
    """config.json for the board: sensor, window, labels, preprocessing, decision rule, board.

    Needs cfg.calibration (set by training; `load_run(RUN)` restores it). output_quant is the
    model output's (scale, zero_point), used to give the decision threshold in int8 units.
    """
    if cfg.calibration is None:
        raise TrainerError(f"{cfg.source}: no calibration: train first, then use load_run(RUN)")
    labels = list(cfg.classes or ())
    dec = cfg.decision
    decision: dict[str, Any] = {
        "fault_classes": [labels.index(c) for c in dec.fault_classes if c in labels],
        "threshold": dec.threshold, "n": dec.n, "m": dec.m, "action": dec.action,
    }
    if output_quant is not None:
        s, zp = output_quant
        decision["threshold_q"] = max(-128, min(127, int(round(dec.threshold / s)) + int(zp)))
        decision["output_scale"], decision["output_zero_point"] = float(s), int(zp)
    if cfg.task == "anomaly" and cfg.calibration is not None:
        decision["anomaly"] = True
    return {
        "version": 1, "name": cfg.name, "task": cfg.task, "channels": list(cfg.channels),
        "sample_rate": cfg.sample_rate,
        "counts_per_unit": list(cfg.counts_per_unit) if isinstance(cfg.counts_per_unit, tuple)
        else cfg.counts_per_unit,
        "window": cfg.window, "stride": cfg.stride, "labels": labels, "healthy": cfg.healthy,
        "preprocess": preprocess_config(cfg, cfg.calibration), "decision": decision,
        "board": cfg.board, "model": "model.elb",
    } | ({"sensors": [s.to_device(cfg.sample_rate) for s in cfg.sensors]} if cfg.sensors else {}
         ) | ({"actions": device_actions(cfg.actions, labels)} if cfg.actions else {})


def load_run(run_dir: Path | str) -> Config:
    """The config a run was trained with, its calibration restored (RUN/edgeloop.toml + .json)."""
    run = Path(run_dir)
    cfg = load_config(run / "edgeloop.toml")
    cal_path = run / "calibration.json"
    if not cal_path.is_file():
        raise TrainerError(f"{cal_path}: missing; was {run} written by `edgeloop train`?")
    cal = Calibration.from_dict(json.loads(cal_path.read_text()))
    return cfg.with_(calibration=cal)
