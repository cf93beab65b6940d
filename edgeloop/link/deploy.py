"""Deploy a model and the device app to a board: incremental, atomic for the model, verified.

What goes on the board: the firmware_micropython/ modules precompiled to .mpy for the board's
architecture (main.py stays source), config.json (the device config the trainer wrote into the
run folder, or one given; a model without one is refused), and model.elb. Files whose sha256 on the board already matches are
skipped. Every file is written under a temporary name, checked on the board, then renamed, so a
deploy cut off half-way leaves the previous model (and app) working. At the end one inference
runs on the board and must equal the golden executor's output, bit for bit.
"""

from __future__ import annotations

import ast
import binascii
import hashlib
import json
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeloop import vboard
from edgeloop.boards import BoardProfile
from edgeloop.errors import EdgeLoopError
from edgeloop.firmware import build_firmware, firmware_sources
from edgeloop.link.transport import Transport

MODEL_PATH = "model.elb"
CONFIG_PATH = "config.json"
SIM_SAMPLES_PATH = "samples.s16"
SIM_TRUTH_PATH = "samples.truth.json"  # the twin's state per stretch of samples.s16
BUNDLE_MAGIC = b"ELMB"
# verification's scratch files: temporary names like every other file a deploy writes
VERIFY_SCRATCH = ("verify_in.tmp", "verify_out.tmp", "verify_ticks.tmp")
_HEADER = struct.Struct("<4sHHII")  # magic, format_version, header_size, body_len, crc32(body)

# A standalone app on an MPU6050 with no preprocessing of its own: for tests and benches that
# deploy a bare bundle on purpose (plan_deploy(..., config=DEFAULT_DEVICE_CONFIG)).
DEFAULT_DEVICE_CONFIG: dict = {
    "version": 1,
    "mode": "standalone",
    "sample_rate": 1000,
    "counts_per_unit": 16384,
    "sensor": {"kind": "mpu6050", "addr": 0x68},
    "actuator": {"active_high": True},
    "decision": {"threshold": 0.5, "n": 3, "m": 5},
    "model": "model.elb",
}

# On the board: check the bundle's header and CRC32 of its body, reading 512 bytes at a time.
_CRC_CODE = """
import binascii, struct
f = open(%r, 'rb')
h = f.read(16)
magic, ver, hs, blen, crc = struct.unpack('<4sHHII', h)
f.seek(hs)
b = bytearray(512)
c = 0
n_total = 0
while True:
    n = f.readinto(b)
    if not n:
        break
    c = binascii.crc32(memoryview(b)[:n], c)
    n_total += n
f.close()
print(repr((magic == b'ELMB', n_total == blen, (c & 0xffffffff) == crc)))
"""

class DeployError(EdgeLoopError):
    pass


@dataclass
class DeployPlan:
    """The files a board should end up with (remote path -> bytes), model last."""

    files: dict[str, bytes]
    model: bytes
    config_source: str
    arch: str | None = None  # mpy-cross -march of the .mpy files, checked against the board


# sys.implementation._mpy = version | sub_version << 8 | arch << 10 (py/persistentcode.h)
MPY_VERSION, MPY_SUB_VERSION = 6, 3
MPY_ARCHS = {"x86": 1, "x64": 2, "xtensa": 9, "xtensawin": 10, "rv32imc": 11}


def check_board_mpy(transport: Transport, arch: str) -> None:
    """Refuse a board whose MicroPython cannot import our .mpy files, before copying anything."""
    code = "import sys\nprint(getattr(sys.implementation, '_mpy', -1))"
    mpy = int(transport.exec(code).strip().splitlines()[-1])
    if mpy < 0:
        raise DeployError(
            f"the {transport.name} cannot import .mpy files (no sys.implementation._mpy)"
        )
    version, sub, board_arch = mpy & 0xFF, (mpy >> 8) & 3, mpy >> 10
    if (version, sub) != (MPY_VERSION, MPY_SUB_VERSION):
        raise DeployError(
            f"the {transport.name} runs MicroPython with .mpy {version}.{sub}; EdgeLoop's files are "
            f"{MPY_VERSION}.{MPY_SUB_VERSION}: flash MicroPython v1.23 or newer (`edgeloop flash`)"
        )
    if MPY_ARCHS.get(arch) != board_arch:
        names = {v: k for k, v in MPY_ARCHS.items()}
        raise DeployError(
            f"the {transport.name} runs {names.get(board_arch, board_arch)} code but the files were "
            f"built for {arch}: give the right --board-profile"
        )


@dataclass
class DeployResult:
    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    verified: bool = False
    bytes_copied: int = 0
    verify_detail: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "copied": self.copied,
            "skipped": self.skipped,
            "removed": self.removed,
            "bytes_copied": self.bytes_copied,
            "verified": self.verified,
            "verify": self.verify_detail,
        }


def check_bundle(bundle: bytes, where: str) -> None:
    """Refuse anything that is not an intact EdgeLoop bundle before it goes near a board."""
    if len(bundle) < _HEADER.size or bundle[:4] != BUNDLE_MAGIC:
        raise DeployError(f"{where} is not an EdgeLoop model bundle (no ELMB header)")
    _, _, header_size, body_len, crc = _HEADER.unpack_from(bundle)
    body = bundle[header_size:]
    if len(body) != body_len or (binascii.crc32(body) & 0xFFFFFFFF) != crc:
        raise DeployError(f"{where} is damaged: body length or CRC32 does not match its header")


def load_model(source: Path, profile: BoardProfile,
               word_bits: int = 64) -> tuple[bytes, dict | None, str]:
    """The bundle and the device config from a run folder, a .elb or a .tflite.

    A .tflite is converted with the fit check for word_bits (the board that runs it: 32 for a
    real ESP32, the executable's for a virtual board; 64, the larger estimate, by default).

    The config is the run's config.json: in the folder given, or beside the model file given.
    Returns (bundle, config or None when there is none, what the config came from).
    """
    source = Path(source)
    if not source.exists():
        raise DeployError(f"{source} does not exist (give a run folder, a .elb or a .tflite)")
    if source.is_dir():
        if (source / MODEL_PATH).is_file():
            model_file = source / MODEL_PATH
        elif (source / "model_int8.tflite").is_file():
            model_file = source / "model_int8.tflite"
        else:
            raise DeployError(f"{source} has neither {MODEL_PATH} nor model_int8.tflite")
    else:
        model_file = source
    config, config_src = None, "none"
    cfg_path = config_beside(source)
    if cfg_path is not None:
        config, config_src = read_config(cfg_path), str(cfg_path)
    data = model_file.read_bytes()
    if model_file.suffix == ".tflite":
        from converters import ConvertError, convert_tflite

        try:
            data = convert_tflite(data, heap_limit=profile.heap_bytes,
                                  word_bits=word_bits).bundle
        except ConvertError as exc:  # say which file: a run folder hides it
            raise DeployError(f"{model_file}: {exc}") from exc
    check_bundle(data, str(model_file))
    return data, config, config_src


def config_beside(source: Path) -> Path | None:
    """The run's config.json: in the folder given, or beside the model file given."""
    source = Path(source)
    path = (source if source.is_dir() else source.parent) / CONFIG_PATH
    return path if path.is_file() else None


def require_config(source: Path) -> None:
    """Refuse early (before a board is opened) a model that has no config.json beside it."""
    if Path(source).exists() and config_beside(source) is None:
        raise _no_config(Path(source))


def read_config(path: Path) -> dict:
    """A device config.json (a run's, or one given with --config)."""
    try:
        config = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise DeployError(f"{path}: cannot read it: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise DeployError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise DeployError(f"{path}: a device config is a JSON object, got {type(config).__name__}")
    return config


def _no_config(source: Path) -> DeployError:
    """Refuse a model without its run's preprocessing, window, labels and decision (it would be
    deployed on defaults and act on healthy data), naming the run folder when it can be found."""
    folder = source if source.is_dir() else source.parent
    hint = ""
    try:  # a `convert` output folder records the .tflite it came from
        origin = Path(json.loads((folder / "report.json").read_text())["model"]).parent
        if (origin / CONFIG_PATH).is_file():
            hint = f"`edgeloop deploy {origin}`, or "
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return DeployError(
        f"{source}: no {CONFIG_PATH} beside the model (the run's preprocessing, window, labels "
        f"and decision): deploy the run folder {hint or '(`edgeloop deploy RUN`), or '}"
        f"give the run's config with --config RUN/{CONFIG_PATH}"
    )


def check_config_fits(cfg: dict, bundle: bytes, config_src: str) -> None:
    """The config's int8 input quantization must be the bundle's own: a config from another
    training run would feed the model wrongly scaled inputs and still pass verify."""
    pre = cfg.get("preprocess")
    if not isinstance(pre, dict) or "input_scale" not in pre:
        return
    from converters.bundle import parse_bundle
    from converters.errors import ConvertError

    try:
        b = parse_bundle(bundle)
    except ConvertError as exc:
        raise DeployError(f"bad bundle: {exc}") from exc
    t = b.tensors[b.inputs[0]]
    s, zp = float(pre["input_scale"]), int(pre.get("input_zero_point", 0))
    if abs(s - t.scale) > 1e-6 * max(abs(s), 1e-12) or zp != t.zero_point:
        raise DeployError(
            f"{config_src}: input scale/zero point {s:g}/{zp} but the model's input is "
            f"{t.scale:g}/{t.zero_point}: this config.json belongs to another training run; "
            "deploy the run folder the model was trained in"
        )


def firmware_files(arch: str, include_sim: bool) -> dict[str, bytes]:
    """Device modules compiled for arch (mpy-cross output is cached), as remote path -> bytes."""
    sources = [rel for rel in firmware_sources() if include_sim or rel.parts[0] != "simhw"]
    with tempfile.TemporaryDirectory(prefix="edgeloop-fw-") as tmp:
        written = build_firmware(Path(tmp), arch, sources)
        return {rel.as_posix(): (Path(tmp) / rel).read_bytes() for rel in written}


SimRecording = Callable[[float, float], bytes]  # (units per g, sample rate) -> samples.s16
SimWorld = Callable[[dict], bytes]  # device config (sensor list) -> samples.s16 in its counts
SimAnswer = Callable[[dict], "dict | None"]  # device config -> sensor.sim_answer (simhw/answer.py)


def plan_deploy(
    source: Path, profile: BoardProfile, virtual: bool, config: dict | None = None,
    sim_recording: SimRecording | None = None, sim_world: SimWorld | None = None,
    sim_answer: SimAnswer | None = None,
) -> DeployPlan:
    """Everything to put on the board. The virtual board runs code for its executable's arch
    (vboard.mpy_arch(): x64 on the PyPI port, x86 on a 32-bit build) whatever it emulates.

    On the virtual board the standalone app's simulated sensor plays samples.s16: the caller
    records them from its sensor twin (`sim_recording(units, sample_rate)`, see
    sim_samples_bytes); a run with a sensor list gets `sim_world(config)` instead (every
    channel in the run's counts, edgeloop.twins.domain_recording); without one, a samples file
    already on the board is left as it is. `sim_answer(config)` (edgeloop.twins.domain_answer)
    makes that world answer the app's outputs (a room its heating warms), set before
    sim_world is asked for the samples (an answered room is recorded uncontrolled).
    """
    # the fit check for the word size of the board that runs it (the x64 port's objects are
    # ~1.6x a real ESP32's)
    bits = vboard.identify().word_bits if virtual else profile.word_bits
    bundle, run_config, config_src = load_model(source, profile, bits)
    if config is None and run_config is None:
        raise _no_config(Path(source))
    cfg = json.loads(json.dumps(config if config is not None else run_config))  # a deep copy
    if config is not None:
        config_src = "given"
    check_config_fits(cfg, bundle, config_src)
    cfg.setdefault("pins", dict(profile.pins))
    if cfg.get("mode", "standalone") == "standalone":
        _check_app_sensor(cfg, config_src)
        check_output_pins(cfg, profile, config_src)
    arch = vboard.mpy_arch() if virtual else profile.mpy_arch
    files = firmware_files(arch, include_sim=virtual)
    if virtual and cfg.get("mode", "standalone") == "standalone":
        # No I2C on the virtual board: the simulated sensor plays the rotating-machine twin
        # (in HIL mode the bench streams the samples instead).
        sensor = cfg.setdefault("sensor", {})
        sensor.setdefault("sim", SIM_SAMPLES_PATH)
        if float(cfg.get("sample_rate", 1000)) < 1.0:  # a room's minute samples: the day plays
            sensor.setdefault("sim_clock", "replay")  # as fast as the app drains it, not in 12 h
        if "sensors" in cfg and sim_world is not None:  # each chip plays its part, in counts
            answer = sim_answer(cfg) if sim_answer is not None and cfg.get("actions") else None
            if answer:
                sensor.setdefault("sim_answer", answer)
            if sensor["sim"] == SIM_SAMPLES_PATH:
                files[SIM_SAMPLES_PATH] = sim_world(cfg)
        else:
            units = cfg.get("counts_per_unit", 16384)
            sensor.setdefault("sim_units", int(units[0] if isinstance(units, list) else units))
            if sensor["sim"] == SIM_SAMPLES_PATH and sim_recording is not None:
                files[SIM_SAMPLES_PATH] = sim_recording(
                    sensor["sim_units"], float(cfg.get("sample_rate", 1000))
                )
        _add_truth(files, cfg)
    files[CONFIG_PATH] = (json.dumps(cfg, indent=1, sort_keys=True) + "\n").encode()
    return DeployPlan(files=files, model=bundle, config_source=config_src, arch=arch)


def _add_truth(files: dict[str, bytes], cfg: dict) -> None:
    """A twin's recording knows which state made each sample (edgeloop.twins.TwinRecording):
    samples.truth.json beside it gives field windows their ground truth (`label --from-twin`)."""
    rec = files.get(SIM_SAMPLES_PATH)
    truth = getattr(rec, "truth", None)
    if rec is None or truth is None:
        return
    doc = {"version": 1, "segments": [[int(s), str(lab)] for s, lab in truth],
           "total": len(rec) // 2 // max(1, int(getattr(rec, "channels", 1))),
           "loop": bool(cfg.get("sensor", {}).get("loop", False)), "samples_sha256": _sha(rec)}
    files[SIM_TRUTH_PATH] = (json.dumps(doc) + "\n").encode()


APP_DRIVERS = ("mpu6050", "adxl345", "sht3x", "scd4x")  # firmware_micropython/sensors.py


def check_output_pins(cfg: dict, profile: BoardProfile, config_src: str) -> None:
    """Refuse outputs on GPIOs the board's chip cannot drive (a C3 has no GPIO 25; an ESP32's
    34-39 are inputs), naming the action, before anything is copied."""
    if not profile.output_gpios:
        return
    uses = [(f"actions[{i}] {a.get('name', a.get('kind'))!r}", a.get("pin"))
            for i, a in enumerate(cfg.get("actions") or ())]
    if not cfg.get("actions"):
        pins, act = cfg.get("pins", {}), cfg.get("actuator", {})
        uses += [("the relay", act.get("pin", pins.get("relay"))),
                 ("the LED", act.get("led", pins.get("led")))]
    for what, pin in uses:
        if pin is not None and pin not in profile.output_gpios:
            raise DeployError(
                f"{config_src}: {what} drives GPIO {pin}, which an {profile.name} cannot drive "
                f"(outputs: {', '.join(map(str, profile.output_gpios))}); set its pin in "
                "edgeloop.toml and retrain, or deploy with the --board-profile the run was made for"
            )


def _check_app_sensor(cfg: dict, config_src: str) -> None:
    """Refuse a run the standalone app cannot feed here, not with a traceback on the board after
    the copy. With a "sensors" list the app reads every listed sensor; without one, one 3-axis
    accelerometer (or one analog pin) at one range."""
    if "sensors" in cfg:
        _check_sensor_list(cfg, config_src)
        return
    kind = cfg.get("sensor", {}).get("kind", "mpu6050")
    want = 1 if kind == "analog" else 3
    channels = cfg.get("channels")
    if channels is not None and len(channels) != want:
        raise DeployError(
            f"{config_src}: the run has {len(channels)} channels ({', '.join(map(str, channels))})"
            f" but the board app reads one {kind} ({want} channel{'s' if want > 1 else ''});"
            " train on that sensor's channels, or run this model with `edgeloop infer`"
        )
    cpu = cfg.get("counts_per_unit")
    if isinstance(cpu, list):
        if len(set(cpu)) != 1:
            raise DeployError(f"{config_src}: counts_per_unit {cpu} differs per channel; the"
                              f" board app sets one {kind} range for all channels")
        cfg["counts_per_unit"] = cpu = cpu[0]
    mpu_ranges = (16384, 8192, 4096, 2048)  # counts/g at +-2/4/8/16 g, as app.py's _MPU_RANGE
    sensor = cfg.get("sensor", {})
    if kind == "mpu6050" and cpu and not sensor.get("range_g") and int(cpu) not in mpu_ranges:
        raise DeployError(
            f"{config_src}: counts_per_unit {cpu} is no MPU6050 range ({', '.join(map(str, mpu_ranges))}"
            " counts/g); set [sensor] counts_per_unit in edgeloop.toml to one of them and retrain"
        )


def _check_sensor_list(cfg: dict, config_src: str) -> None:
    sensors = cfg["sensors"]
    names = [c for spec in sensors for c in spec.get("channels", [])]
    for i, spec in enumerate(sensors):
        if spec.get("driver") not in APP_DRIVERS:
            raise DeployError(f"{config_src}: sensors[{i}] driver {spec.get('driver')!r} is not one"
                              f" the board app has ({', '.join(APP_DRIVERS)})")
    channels = cfg.get("channels")
    if channels is not None and list(channels) != names:
        raise DeployError(f"{config_src}: the sensors give channels {names} but the model was "
                          f"trained on {list(channels)}")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _counterpart(path: str) -> str | None:
    """A stale .py shadows a new .mpy on import (and the other way round): remove it."""
    if path in ("main.py", "boot.py"):
        return None
    if path.endswith(".mpy"):
        return path[:-4] + ".py"
    if path.endswith(".py"):
        return path[:-3] + ".mpy"
    return None


def check_crc_on_board(transport: Transport, remote_path: str) -> bool:
    ok_magic, ok_len, ok_crc = _eval_last(transport, _CRC_CODE % remote_path)
    return bool(ok_magic and ok_len and ok_crc)


def _eval_last(transport: Transport, code: str, timeout: float = 60.0) -> object:
    out = transport.exec(code, timeout=timeout).strip()
    return ast.literal_eval(out.splitlines()[-1])


def put_files(
    transport: Transport,
    wanted: dict[str, bytes],
    result: DeployResult,
    progress: Callable[[str, int], None] | None = None,
    skip: tuple[str, ...] = (),
) -> list[str]:
    """Make the board hold `wanted` (remote path -> bytes) except the `skip` paths: files whose
    sha256 on the board matches are skipped, the others are written under temporary names and
    renamed only once all arrived intact; a stale .py/.mpy counterpart is removed. Returns the
    paths that differed (the skipped ones included, for the caller to put its own way)."""
    counterparts = {p: c for p in wanted if (c := _counterpart(p)) and c not in wanted}
    on_board = transport.fs_hashes(list(wanted) + list(counterparts.values()))
    to_copy = [p for p in wanted if on_board[p] != _sha(wanted[p])]
    result.skipped = [p for p in wanted if p not in to_copy]
    app_files = [p for p in to_copy if p not in skip]
    made_dirs: set[str] = set()
    for path in app_files:
        parent = path.rpartition("/")[0]
        if parent and parent not in made_dirs:
            transport.fs_makedirs(parent)
            made_dirs.add(parent)
        if progress:
            progress(path, len(wanted[path]))
        transport.fs_put(wanted[path], path + ".tmp")
    if app_files:
        got = transport.fs_hashes([p + ".tmp" for p in app_files])
        bad = [p for p in app_files if got[p + ".tmp"] != _sha(wanted[p])]
        if bad:
            raise DeployError(f"files arrived damaged on the board: {', '.join(bad)}")
        for path in app_files:
            transport.fs_rename(path + ".tmp", path)
            result.copied.append(path)
            result.bytes_copied += len(wanted[path])
    for stale in counterparts.values():
        if on_board.get(stale) is not None:
            transport.fs_remove(stale, missing_ok=True)
            result.removed.append(stale)
    return to_copy


def deploy(
    transport: Transport,
    plan: DeployPlan,
    verify: bool = True,
    progress: Callable[[str, int], None] | None = None,
) -> DeployResult:
    """Make the board hold exactly the plan's files; the model is swapped in last and atomically."""
    result = DeployResult()
    if plan.arch is not None:
        check_board_mpy(transport, plan.arch)
    wanted = dict(plan.files)
    wanted[MODEL_PATH] = plan.model
    to_copy = put_files(transport, wanted, result, progress, skip=(MODEL_PATH,))

    if MODEL_PATH in to_copy:
        tmp = MODEL_PATH + ".tmp"
        if progress:
            progress(MODEL_PATH, len(plan.model))
        transport.fs_put(plan.model, tmp)
        if not check_crc_on_board(transport, tmp):
            transport.fs_remove(tmp, missing_ok=True)
            raise DeployError(
                f"{tmp} failed its CRC check on the board; the previous model was left in place"
            )
        transport.fs_rename(tmp, MODEL_PATH)
        result.copied.append(MODEL_PATH)
        result.bytes_copied += len(plan.model)

    if verify:
        result.verify_detail = verify_on_board(transport, plan.model)
        result.verified = bool(result.verify_detail["match"])
    return result


def verify_on_board(transport: Transport, bundle: bytes, seed: int = 0) -> dict:
    """One inference on the board on a seeded random input, compared with the golden executor.

    It runs the same on-board script as `edgeloop infer` (edgeloop.infer), on the model file
    just deployed; its scratch files are removed afterwards.
    """
    from converters.golden import run_bundle
    from edgeloop.infer import InferError, model_io, run_batch_transport

    in_shape = model_io(bundle)["input_shape"]
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=in_shape, dtype=np.int8)
    # Extremes included: they are where rounding and saturation differ first.
    flat = x.reshape(-1)
    flat[:2] = (-128, 127)
    try:
        y, stats = run_batch_transport(
            transport, bundle, x[np.newaxis], model_path=MODEL_PATH, put_model=False,
            timeout=120.0, cleanup=True, scratch=VERIFY_SCRATCH,
        )
    except InferError as exc:
        raise DeployError(f"the board could not run {MODEL_PATH}: {exc}") from exc
    y_board = y.reshape(-1)
    batch = x if (len(in_shape) > 1 and in_shape[0] == 1) else x[np.newaxis]
    y_gold = np.asarray(run_bundle(bundle, batch)).astype(y_board.dtype).reshape(-1)
    match = y_board.shape == y_gold.shape and bool(np.array_equal(y_board, y_gold))
    return {
        "match": match,
        "input_shape": list(in_shape),
        "output_shape": list(stats["output_shape"]),
        "kernels": stats["kernels"],
        "board_output": y_board.tolist()[:16],
        "golden_output": y_gold.tolist()[:16],
    }


def sim_samples_bytes(samples: np.ndarray, units: float = 1000) -> bytes:
    """Samples [n, channels] in g (or volts) as the simulated sensors' file: int16 in 1/units.

    With units = the sensor's counts per g (config "sensor": {"sim_units": ...}) the simulated
    chip returns exactly these counts. NaN (never seen in raw counts) becomes 0, like a dropout.
    """
    arr = np.asarray(samples, dtype=np.float64)
    if arr.ndim != 2:
        raise DeployError(f"simulated samples must be [n, channels], got shape {arr.shape}")
    q = np.nan_to_num(np.round(arr * units), nan=0.0)
    return np.clip(q, -32768, 32767).astype("<i2").tobytes()


def write_sim_samples(
    transport: Transport, samples: np.ndarray, remote_path: str, units: float = 1000
) -> None:
    """Put a sample file on a (virtual) board for the simulated sensor to play."""
    transport.fs_put(sim_samples_bytes(samples, units), remote_path)
