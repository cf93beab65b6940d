"""Training run: data -> features -> Keras model -> int8 .tflite -> report, in one folder.

RUN/model.keras, RUN/model_int8.tflite, RUN/report.json (float_accuracy/int8_accuracy, or
float_auc/int8_auc for anomaly), RUN/model_card.json, RUN/confusion.png (or scores.png),
RUN/training_curve.png, RUN/edgeloop.toml (the config used), RUN/calibration.json and
RUN/config.json (the board's device config), RUN/manifest.json (trainer.runs) and
RUN/tensorflow.log (TensorFlow's own chatter, kept off the console). The run is staged and moved
into place complete. The int8 metrics are measured on exactly the int8 inputs the board computes
(trainer.features.quantize_input), not on TFLite's own quantizer.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

import numpy as np

from trainer.config import MODELS, Config, device_config, load_config, to_toml
from trainer.data import Splits, load_splits
from trainer.errors import TrainerError
from trainer.features import (
    WINDOW_MAX,
    WINDOW_MIN,
    compute_features,
    decimate_problem,
    fft_bins_problem,
    fft_size,
    fit_calibration,
    float_input,
    quantize_input,
)
from trainer.report import (
    anomaly_metrics,
    classification_metrics,
    plot_confusion,
    plot_history,
    plot_scores,
)
from trainer.runs import staged_run, write_manifest
from trainer.sources import as_sources
from trainer.tflog import tf_logs_to

ANOMALY_PERCENTILE = 99.5
MPU6050_COUNTS = (16384.0, 8192.0, 4096.0, 2048.0)  # counts per g at +-2/4/8/16 g
HEALTHY_NAMES = ("normal", "healthy", "ok", "idle", "nominal", "good", "off")


def infer_config(data: Path | str) -> Config:
    """A config for data without edgeloop.toml: channels and rate from the first CSV."""
    p = Path(data)
    if (p / "edgeloop.toml").is_file():
        return load_config(p / "edgeloop.toml")
    if p.suffix == ".npz":
        try:
            z = np.load(p, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise TrainerError(f"{p}: not a readable .npz: {exc}") from None
        if not isinstance(z, np.lib.npyio.NpzFile) or "X" not in z:
            raise TrainerError(f"{p}: missing array 'X' (save with np.savez(path, X=..., y=...))")
        if z["X"].ndim != 3:
            raise TrainerError(f"{p}: X must be [n, t, channels], got shape {z['X'].shape}")
        t, c = z["X"].shape[1:]
        w = min(1024, int(t))  # the recorded windows (any length), at most 1024 samples
        peak = np.maximum(np.abs(np.nan_to_num(z["X"])).max(axis=(0, 1)), 1e-6)
        cpu = _one_range(peak, c)
        from trainer.features import FeatureSpec

        chain = ("mean", "dc", "rms", "peak", "fft") if w >= 16 else ("mean", "rms", "peak")
        return Config(channels=tuple(f"c{i}" for i in range(c)), sample_rate=100.0, window=w,
                      stride=max(1, w // 2), counts_per_unit=cpu, source=str(p),
                      features=FeatureSpec(chain, min(8, fft_size(w) // 2)))
    files = sorted(p.rglob("*.csv")) if p.is_dir() else []
    if not files:
        raise TrainerError(f"{p}: no .csv files found (and no edgeloop.toml)")
    try:
        with files[0].open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except UnicodeDecodeError as exc:
        from trainer.data import _not_utf8

        raise TrainerError(_not_utf8(files[0], exc)) from None
    if not rows:
        raise TrainerError(f"{files[0]}: empty file (expected a header row)")
    header = [h.strip() for h in rows[0]]
    channels = tuple(h for h in header if h not in ("timestamp", "label"))
    try:
        vals = np.array([[float(r[header.index(c)]) for c in channels] for r in rows[1:]])
    except (ValueError, IndexError):
        raise TrainerError(f"{files[0]}: cannot infer a config from it; give --config") from None
    # counts per unit: a power of two leaving 2x headroom over the largest value in the data
    peak = np.abs(vals).max(axis=0) if len(vals) else np.zeros(len(channels))
    for f in files[1:200]:
        with f.open(newline="", encoding="utf-8-sig", errors="replace") as fh:  # load_splits says
            rd = csv.reader(fh)
            hdr = [h.strip() for h in next(rd, [])]
            if all(c in hdr for c in channels):
                idx = [hdr.index(c) for c in channels]
                for r in rd:
                    for j, k in enumerate(idx):
                        try:
                            peak[j] = max(peak[j], abs(float(r[k])))
                        except (ValueError, IndexError):
                            pass  # load_splits reports bad cells with file and line
    cpu = _one_range(peak, len(channels))
    rate = 100.0
    if "timestamp" in header and len(rows) > 3:
        ts = np.array([float(r[header.index("timestamp")]) for r in rows[1:64]])
        rate = 1000.0 / float(np.median(np.diff(ts)))
    window = 256 if rate >= 400 else 128 if rate >= 40 else 16
    chain = ("dc", "rms", "peak", "fft") if rate >= 400 else ("mean", "dc", "rms", "peak", "fft")
    from trainer.features import FeatureSpec

    bins = min(16, window // 2)
    return Config(channels=channels, sample_rate=rate, window=window, counts_per_unit=cpu,
                  stride=window // 2, features=FeatureSpec(chain, bins), source=str(files[0]),
                  label_column="label" if "label" in header else None)


def _one_range(peak: np.ndarray, n_channels: int) -> float | tuple[float, ...]:
    """counts_per_unit per channel: a power of two leaving 2x headroom over the largest value.
    Three axes are one accelerometer with one range (what the board app sets): one value for
    all, an MPU6050 range whenever the data fits one."""
    peak = np.maximum(np.abs(np.asarray(peak, np.float64)), 1e-6)
    cpu = tuple(float(2.0 ** np.clip(np.floor(np.log2(16384.0 / p)), -8, 14)) for p in peak)
    if n_channels != 3:
        return cpu
    one = min(cpu)
    return min(one, MPU6050_COUNTS[0]) if one >= MPU6050_COUNTS[-1] else one


def inferred_notes(cfg: Config, data: Path | str, out: Path | str) -> list[str]:
    """What was guessed for data without edgeloop.toml, and what the board will make of it."""
    cpu = cfg.counts_per_unit
    notes = [
        f"no edgeloop.toml in {data}: inferred channels {', '.join(cfg.channels)}, "
        f"{cfg.sample_rate:g} Hz, counts_per_unit {cpu:g}, window {cfg.window}/stride "
        f"{cfg.stride}, features {' '.join(cfg.features.chain)}; to change them copy "
        f"{Path(out) / 'edgeloop.toml'} to {data}/edgeloop.toml and edit it"
    ]
    if len(cfg.channels) != 3:
        notes.append(f"{len(cfg.channels)} channels: the board app reads one 3-axis "
                     "accelerometer, so `edgeloop deploy` will refuse this run (use `edgeloop infer`)")
    elif isinstance(cpu, float) and cpu not in MPU6050_COUNTS:
        notes.append(f"counts_per_unit {cpu:g} is no MPU6050 range (16384/8192/4096/2048 counts "
                     "per g): `edgeloop deploy` will refuse this run; record in g and set [sensor] "
                     "counts_per_unit in edgeloop.toml")
    if cfg.task == "classify" and not cfg.decision.fault_classes:
        notes.append("no healthy class known (none is named normal/healthy/idle/ok): the board will "
                     "never act on this model; set [labels] healthy = \"<class>\" in edgeloop.toml")
    elif cfg.task == "classify" and cfg.healthy:
        notes.append(f"healthy class {cfg.healthy!r}; the board acts on "
                     f"{', '.join(cfg.decision.fault_classes)}")
    return notes


def calibrate_threshold(healthy: np.ndarray, anomalous: np.ndarray) -> float:
    """Anomaly threshold from validation scores: where detection - false alarms is largest
    (midway between the two neighbouring scores) if the validation set has anomalies, else the
    ANOMALY_PERCENTILE of the healthy scores."""
    if len(healthy) == 0:
        raise TrainerError("no healthy validation windows to calibrate the anomaly threshold")
    if len(anomalous) == 0:
        return float(np.percentile(healthy, ANOMALY_PERCENTILE))
    cand = np.unique(np.concatenate([healthy, anomalous]))
    tpr = (anomalous[None, :] > cand[:, None]).mean(1)
    fpr = (healthy[None, :] > cand[:, None]).mean(1)
    best = int(np.argmax(tpr - fpr))
    hi = cand[best + 1] if best + 1 < len(cand) else cand[best]
    return float((cand[best] + hi) / 2)


def _progress_callback(epochs: int, console: TextIO | None):
    import keras

    class Bar(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=epochs, desc="training", unit="epoch", file=console,
                            disable=console is None, leave=False)

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items() if "loss" in k or "acc" in k})
            self.bar.update(1)

        def on_train_end(self, logs=None):
            self.bar.close()

    return Bar()


def _set_seed(seed: int) -> None:
    import keras
    import tensorflow as tf

    keras.backend.clear_session()  # layer-name counters too: same seed, same .tflite bytes
    keras.utils.set_random_seed(seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except AttributeError:  # older TF lacks it: determinism is then best effort
        pass


def check_options(window: int | None, stride: int | None, epochs: int | None,
                  seed: int | None, model: str | None) -> str | None:
    """Refuse bad command-line values before any data is read or TensorFlow loads; returns the
    model name in its canonical spelling (`cnn-1d`... as typed: hyphens become underscores)."""
    if model is not None:
        model = model.strip().lower().replace("-", "_")
        model = {"cnn_1d": "cnn1d", "ds_cnn": "dscnn", "auto_encoder": "autoencoder"}.get(model,
                                                                                          model)
        if model not in MODELS:
            raise TrainerError(f"--model {model!r} is unknown; known: {', '.join(MODELS)}")
    if window is not None and not WINDOW_MIN <= window <= WINDOW_MAX:
        raise TrainerError(f"--window must be {WINDOW_MIN}..{WINDOW_MAX} samples, got {window}")
    if stride is not None and stride < 1:
        raise TrainerError(f"--stride must be >= 1 sample (windows start every STRIDE samples), "
                           f"got {stride}")
    if epochs is not None and not 1 <= epochs <= 100_000:
        raise TrainerError(f"--epochs must be in 1..100000, got {epochs}")
    if seed is not None and not 0 <= seed < 2**32:
        raise TrainerError(f"--seed must be in 0..{2**32 - 1}, got {seed}")
    return model


def _user_set(cfg: Config, table: str, key: str) -> bool:
    """Whether the config's edgeloop.toml sets [table] key itself (else it is a default)."""
    src = Path(cfg.source)
    if src.suffix != ".toml" or not src.is_file():
        return False
    import tomllib

    try:
        return key in tomllib.loads(src.read_text()).get(table, {})
    except (OSError, ValueError):
        return False


def _fit_features_to_window(cfg: Config, window_given: bool) -> Config:
    """Adapt feature defaults to the window; explain a conflict with what the user set."""
    from dataclasses import replace

    fs = cfg.features
    half = fft_size(cfg.window) // 2
    why = "--window" if window_given else f"[window] size in {cfg.source}"
    if "fft" in fs.blocks and (problem := fft_bins_problem(cfg.window, fs.fft_bins)):
        if not _user_set(cfg, "features", "fft_bins"):
            fs = replace(fs, fft_bins=min(fs.fft_bins, half))
            cfg = cfg.with_(features=fs)
        else:
            raise TrainerError(f"{why} {cfg.window}: {problem} ([features] fft_bins in "
                               f"{cfg.source})")
    if "raw" in fs.blocks and (problem := decimate_problem(cfg.window, fs.raw_decimate)):
        if not _user_set(cfg, "features", "raw_decimate"):
            return cfg.with_(features=replace(fs, raw_decimate=1))
        raise TrainerError(f"{why} {cfg.window}: {problem} ([features] raw_decimate in "
                           f"{cfg.source}), or pick a window it divides")
    return cfg


def train(
    data: Path | str | Sequence[Path | str],
    out: Path | str,
    cfg: Config | None = None,
    *,
    test: Path | str | None = None,
    model: str | None = None,
    window: int | None = None,
    stride: int | None = None,
    seed: int | None = None,
    epochs: int | None = None,
    progress: bool = True,
    splits: Splits | None = None,
    finish: Callable[[Path, dict], None] | None = None,
) -> dict:
    """Train, quantize and report; returns the report dict (also RUN/report.json).

    The run is written to a staging folder and replaces `out` only when complete; `finish(stage,
    report)` may add files (the CLI adds the bundle) before the manifest is written. `data`
    may be several datasets (trainer.sources): the config is the first's unless `cfg` is given."""
    model = check_options(window, stride, epochs, seed, model)
    if not isinstance(data, (str, Path)):
        data = as_sources(data)
        if len(data) == 1:
            data = data[0]
    primary = data if isinstance(data, (str, Path)) else data[0]
    if not isinstance(data, (str, Path)) and any(str(p).startswith("sktime:") for p in data):
        raise TrainerError("sktime:BasicMotions is a packaged dataset; it cannot be merged")
    inferred = cfg is None and not str(primary).startswith("sktime:") and not (
        Path(primary) / "edgeloop.toml").is_file()
    if str(data).startswith("sktime:"):  # real data shipped inside the sktime wheel
        from trainer.datasets import basic_motions_config, basic_motions_splits

        if str(data) != "sktime:BasicMotions":
            raise TrainerError(f"unknown packaged dataset '{data}'; known: sktime:BasicMotions")
        cfg = cfg or basic_motions_config()
        if splits is None:
            splits = basic_motions_splits(cfg, seed=cfg.model.seed if seed is None else seed)
    cfg = cfg or infer_config(primary)
    mspec = cfg.model
    if model is not None:
        task = "anomaly" if model == "autoencoder" else "classify"
        cfg = cfg.with_(task=task)
        mspec = type(mspec)(**{**mspec.__dict__, "name": model})
    if seed is not None:
        mspec = type(mspec)(**{**mspec.__dict__, "seed": seed})
    if epochs is not None:
        mspec = type(mspec)(**{**mspec.__dict__, "epochs": epochs})
    if window is not None and stride is None and not inferred and not _user_set(
            cfg, "window", "stride"):
        stride = max(1, window // 2)
    elif window is not None and stride is None and inferred:
        stride = max(1, window // 2)
    cfg = cfg.with_(model=mspec, window=cfg.window if window is None else window,
                    stride=cfg.stride if stride is None else stride)
    if not WINDOW_MIN <= cfg.window <= WINDOW_MAX:
        raise TrainerError(f"window {cfg.window} ({cfg.source}) must be {WINDOW_MIN}..{WINDOW_MAX} "
                           "samples")
    cfg = _fit_features_to_window(cfg, window is not None)
    if cfg.task == "anomaly" and mspec.name != "autoencoder":
        raise TrainerError(f"model {mspec.name!r} is a classifier; anomaly needs 'autoencoder'")
    if cfg.task == "anomaly" and cfg.healthy is None:
        raise TrainerError("anomaly training needs [labels] healthy (the normal class)")
    if mspec.qat:
        from trainer.quantize import check_qat_available

        check_qat_available()
    with staged_run(out) as run:
        with tf_logs_to(run / "tensorflow.log") as console:
            report, cfg = _train_into(run, data, cfg, test, splits, inferred,
                                      console if progress else None, t0=time.perf_counter())
        if inferred:
            report["notes"] = inferred_notes(cfg, primary, out)
            (run / "report.json").write_text(json.dumps(report, indent=2))
        if finish is not None:
            finish(run, report)
        write_manifest(run, report["io_quant"], sources=[
            s["abs"] for s in report.get("sources", ())])
    return report


def _train_into(run: Path, data: Path | str | list[Path], cfg: Config, test: Path | str | None,
                splits: Splits | None, inferred: bool, console: TextIO | None,
                t0: float) -> tuple[dict, Config]:
    """The training proper, writing into the (staging) run folder."""
    from trainer.quantize import check_ops, io_quant, run_int8, to_int8
    from trainer.zoo import build, count_macs, deployable

    t_start = t0
    mspec = cfg.model
    sp = splits or load_splits(data, cfg, test=test, seed=mspec.seed)
    classes = sp.classes
    cfg = cfg.with_(classes=classes)
    if inferred and cfg.healthy is None:  # a guess the notes report; edgeloop.toml overrides it
        cfg = cfg.with_(healthy=next((c for c in classes if c.lower() in HEALTHY_NAMES), None))
    if not cfg.decision.fault_classes and cfg.healthy in classes:
        from trainer.config import DecisionSpec

        cfg = cfg.with_(decision=DecisionSpec(
            tuple(c for c in classes if c != cfg.healthy), cfg.decision.threshold,
            cfg.decision.n, cfg.decision.m, cfg.decision.action))
    anomaly = cfg.task == "anomaly"
    healthy = classes.index(cfg.healthy) if anomaly else None
    train_x = sp.train.x[sp.train.y == healthy] if anomaly else sp.train.x
    train_y = sp.train.y[sp.train.y == healthy] if anomaly else sp.train.y
    if len(train_x) == 0:
        raise TrainerError("no training windows (for anomaly: no healthy training windows)")

    t0 = time.perf_counter()
    cal = fit_calibration(train_x, cfg.features)
    feats = {n: compute_features(x, cfg.features, cal.shift) for n, x in
             (("train", train_x), ("val", sp.val.x), ("test", sp.test.x))}
    xf = {n: float_input(f, cal) for n, f in feats.items()}
    t_features = time.perf_counter() - t0

    _set_seed(mspec.seed)
    import keras

    net = build(mspec.name, cfg.input_shape, len(classes))
    net.compile(optimizer=keras.optimizers.Adam(mspec.learning_rate),
                loss="mse" if anomaly else "sparse_categorical_crossentropy",
                metrics=[] if anomaly else ["accuracy"])
    val_x = xf["val"][sp.val.y == healthy] if anomaly else xf["val"]
    val_y = sp.val.y
    fit_kw: dict = {}
    if not anomaly:
        counts = np.bincount(train_y, minlength=len(classes))
        fit_kw["class_weight"] = {i: float(len(train_y) / (len(classes) * max(c, 1)))
                                  for i, c in enumerate(counts)}
    callbacks = [_progress_callback(mspec.epochs, console)]
    has_val = len(val_x) > 0
    if has_val:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=10, restore_best_weights=True))
    t0 = time.perf_counter()
    hist = net.fit(
        xf["train"], xf["train"] if anomaly else train_y,
        validation_data=((val_x, val_x) if anomaly else (val_x, val_y)) if has_val else None,
        epochs=mspec.epochs, batch_size=mspec.batch_size, verbose=0, shuffle=True,
        callbacks=callbacks, **fit_kw,
    )
    t_train = time.perf_counter() - t0
    deploy_model = deployable(net, mspec.name, cfg.input_shape, len(classes), anomaly)

    t0 = time.perf_counter()
    rep = xf["train"]
    if anomaly:  # headroom: scores of anomalous windows must not all saturate the int8 output
        rng = np.random.default_rng(mspec.seed)
        pick = rng.choice(len(rep), min(len(rep), 200), replace=False)
        noisy = rep[pick] + rng.normal(0.0, 0.5, size=rep[pick].shape).astype(np.float32)
        rep = np.concatenate([rep[: 300], noisy])
    tfl = to_int8(deploy_model, rep)
    check_ops(tfl)
    q = io_quant(tfl)
    if q.input_scale < 1e-6:
        raise TrainerError(
            "the model input is constant over the training windows: check [sensor] "
            "counts_per_unit and [features] (are the features saturated or all zero?)")
    cal.set_input_quant(q.input_scale, q.input_zero_point)
    t_quant = time.perf_counter() - t0

    def int8_out(name: str) -> np.ndarray:
        xq = quantize_input(feats[name], cal)
        yq = run_int8(tfl, xq).astype(np.float64)
        return (yq - q.output_zero_point) * q.output_scale

    report: dict = {
        "model": mspec.name, "task": cfg.task, "classes": list(classes), "seed": mspec.seed,
        "input_shape": list(cfg.input_shape), "window": cfg.window, "stride": cfg.stride,
        "features": list(cfg.features.chain), "data": _data_name(data),
        "balance": {k: v for k, v in sp.report.items() if k != "sources"},
        "sources": sp.report.get("sources", []),
        "epochs_run": len(hist.history["loss"]),
    }
    test_y = sp.test.y
    if anomaly:
        from trainer.zoo import anomaly_scorer

        scorer = anomaly_scorer(net)
        fs_val = np.asarray(scorer.predict(xf["val"], verbose=0)).reshape(-1)
        is_val_h = sp.val.y == healthy
        thr_f = calibrate_threshold(fs_val[is_val_h], fs_val[~is_val_h])
        qs_val = int8_out("val").reshape(-1)
        thr_q = calibrate_threshold(qs_val[is_val_h], qs_val[~is_val_h])
        fs = np.asarray(scorer.predict(xf["test"], verbose=0)).reshape(-1)
        qs = int8_out("test").reshape(-1)
        anom = test_y != healthy
        mf, mq = anomaly_metrics(fs, anom, thr_f), anomaly_metrics(qs, anom, thr_q)
        report.update(float_auc=mf["auc"], int8_auc=mq["auc"], float=mf, int8=mq)
        plot_scores(qs[~anom], qs[anom], thr_q, run / "scores.png")
    else:
        pf = np.asarray(net.predict(xf["test"], verbose=0))
        pq = int8_out("test")
        mf = classification_metrics(test_y, pf.argmax(1), classes)
        mq = classification_metrics(test_y, pq.argmax(1), classes)
        report.update(float_accuracy=mf["accuracy"], int8_accuracy=mq["accuracy"],
                      float=mf, int8=mq)
        plot_confusion(np.array(mq["confusion"]), classes, run / "confusion.png",
                       f"{mspec.name} int8 (test accuracy {mq['accuracy']:.3f})")
    kept = _kept_epoch(hist.history, has_val)
    report["kept_epoch"] = kept + 1
    plot_history(hist.history, run / "training_curve.png", kept,
                 f"{mspec.name} on {_data_name(data, short=True)}: training curves")

    net.save(run / "model.keras")
    (run / "model_int8.tflite").write_bytes(tfl)
    (run / "edgeloop.toml").write_text(to_toml(cfg))
    (run / "calibration.json").write_text(json.dumps(cal.to_dict()))
    cfg = cfg.with_(calibration=cal)
    dev = device_config(cfg, (q.output_scale, q.output_zero_point))
    if anomaly:
        dev["decision"]["score_threshold"] = thr_q
        dev["decision"]["threshold_q"] = int(min(127, round(thr_q / q.output_scale) + q.output_zero_point))
    (run / "config.json").write_text(json.dumps(dev))
    report.update(
        params=int(net.count_params()), macs=count_macs(deploy_model), tflite_bytes=len(tfl),
        io_quant=q.__dict__, timing_s={
            "features": round(t_features, 3), "train": round(t_train, 3),
            "quantize": round(t_quant, 3), "total": round(time.perf_counter() - t_start, 3)},
    )
    (run / "report.json").write_text(json.dumps(report, indent=2))
    (run / "model_card.json").write_text(json.dumps(_model_card(cfg, report), indent=2))
    return report, cfg


def _data_name(data: Path | str | list[Path], short: bool = False) -> str:
    """The data a run was trained on, for people: one path, or the sources joined by ' + '."""
    items = [data] if isinstance(data, (str, Path)) else list(data)
    return " + ".join(Path(str(p)).name if short else str(p) for p in items)


def _kept_epoch(history: dict, has_val: bool) -> int:
    """The epoch (0-based) whose weights the model keeps: EarlyStopping restores the best
    validation loss; without validation data the last epoch's weights stay."""
    if has_val and history.get("val_loss"):
        return int(np.argmin(history["val_loss"]))
    return len(history["loss"]) - 1


def _model_card(cfg: Config, rep: dict) -> dict:
    import keras
    import tensorflow as tf

    metrics = {k: rep[k] for k in ("float_accuracy", "int8_accuracy", "float_auc", "int8_auc")
               if k in rep}
    return {
        "name": cfg.name, "model": rep["model"], "task": cfg.task, "classes": rep["classes"],
        "inputs": {"channels": list(cfg.channels), "sample_rate_hz": cfg.sample_rate,
                   "counts_per_unit": cfg.counts_per_unit, "window": cfg.window,
                   "stride": cfg.stride, "features": list(cfg.features.chain),
                   "input_shape": rep["input_shape"]},
        "metrics_test": metrics, "params": rep["params"], "macs": rep["macs"],
        "tflite_bytes": rep["tflite_bytes"], "quantization": "full-integer PTQ, int8 in/out",
        "training_data": {"source": rep["data"], "balance": rep["balance"]},
        "seed": rep["seed"], "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "limitations": "Trained on the data above only; check the confusion matrix per class. "
                       "Valid for the sensor, mounting and sample rate in `inputs`.",
    }
