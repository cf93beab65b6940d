"""The benchmark models: our vibration CNN and the five MLPerf Tiny reference architectures,
built locally from their published architecture descriptions and quantized by TensorFlow PTQ.

vibration_cnn1d  1D-CNN over 128x3 accelerometer windows (condition monitoring)
kws_dscnn        MLPerf Tiny keyword spotting: DS-CNN, 49x10x1 MFCC input
resnet8_cifar    MLPerf Tiny image classification: ResNet-8, 32x32x3 input
ad_autoencoder   MLPerf Tiny anomaly detection: FC autoencoder, 640 inputs (~270 KB weights)
mobilenet_vww    MLPerf Tiny visual wake words: MobileNetV1 (width 0.25), 96x96x3 input
streaming_ww     MLPerf Tiny streaming wake word: DS-TCN over 30 frames x 40 features
                 (mlcommons/tiny keras_model.py defaults: valid depthwise (k, 1) taps
                 3/5/10/15, 1x1 convs 128/64/64/32, BatchNorm, ReLU; Dense(3) logits)

Weights are random (seeded) with non-trivial BatchNorm statistics: the benchmark measures speed,
memory and exactness, not accuracy. Every .tflite is cached under build/cache/<hash>.tflite,
keyed by the model recipe and the TensorFlow version, so only the first run pays for TF.
`quantize_keras` and `cached_tflite` are shared with the test factory (tests/factory).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = ROOT / "build" / "cache"
RECIPE_VERSION = 1  # bump when a recipe below changes meaning without changing its spec


def _tf_version() -> str:
    for dist in ("tensorflow-cpu", "tensorflow"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "none"


def cache_path(kind: str, spec: dict) -> Path:
    """build/cache/<hash>.tflite for a recipe; the hash covers spec, recipe and TF versions."""
    key = json.dumps(
        {"kind": kind, "spec": spec, "recipe": RECIPE_VERSION, "tf": _tf_version()},
        sort_keys=True,
    )
    return CACHE_DIR / f"{kind}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.tflite"


def cached_tflite(kind: str, spec: dict, build: Callable[[], bytes]) -> bytes:
    """Return the cached model for (kind, spec), building and storing it atomically on a miss."""
    path = cache_path(kind, spec)
    if path.exists():
        return path.read_bytes()
    data = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)  # atomic: parallel test workers never see a half-written file
    return data


@contextlib.contextmanager
def _quiet():
    """Silence TensorFlow's converter chatter (Python prints and C++ logs on fd 1/2)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def quantize_keras(model, representative: np.ndarray, int8_io: bool = True) -> bytes:
    """Full-integer PTQ: int8 weights and activations, builtins only; int8 input and output
    (int8_io=False keeps float32 I/O: TF adds QUANTIZE at the input, DEQUANTIZE at the output)."""
    with _quiet():
        import tensorflow as tf

    rep = np.asarray(representative, dtype=np.float32)

    def dataset():
        for sample in rep:
            yield [sample[None]]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = dataset
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if int8_io:
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    with _quiet(), warnings.catch_warnings():
        # int8 I/O without input statistics is intended: PTQ calibrates from the dataset
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return bytes(conv.convert())


def randomize_batchnorm(model, seed: int) -> None:
    """Give BatchNorm layers non-trivial statistics so they fold into real scales and offsets."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape).astype(np.float32),
                    rng.normal(0, 0.2, beta.shape).astype(np.float32),
                    rng.normal(0, 0.2, mean.shape).astype(np.float32),
                    rng.uniform(0.5, 2.0, var.shape).astype(np.float32),
                ]
            )


# ---------------------------------------------------------------- the recipes


def _vibration_cnn1d(L, x):
    x = L.Conv1D(16, 5, padding="same", activation="relu")(x)
    x = L.MaxPooling1D(2)(x)
    x = L.Conv1D(32, 3, padding="same", activation="relu")(x)
    x = L.MaxPooling1D(2)(x)
    x = L.Conv1D(32, 3, padding="same", activation="relu")(x)
    x = L.GlobalAveragePooling1D()(x)
    x = L.Dense(16, activation="relu")(x)
    return L.Dense(4, activation="softmax")(x)


def _kws_dscnn(L, x):
    x = L.Conv2D(64, (10, 4), strides=(2, 2), padding="same", use_bias=False)(x)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    for _ in range(4):
        x = L.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
        x = L.BatchNormalization()(x)
        x = L.ReLU()(x)
        x = L.Conv2D(64, 1, use_bias=False)(x)
        x = L.BatchNormalization()(x)
        x = L.ReLU()(x)
    x = L.AveragePooling2D(pool_size=(x.shape[1], x.shape[2]))(x)
    x = L.Flatten()(x)
    return L.Dense(12, activation="softmax")(x)


def _resnet8_cifar(L, x):
    def block(x, filters: int, stride: int):
        y = L.Conv2D(filters, 3, strides=stride, padding="same")(x)
        y = L.BatchNormalization()(y)
        y = L.Activation("relu")(y)
        y = L.Conv2D(filters, 3, padding="same")(y)
        y = L.BatchNormalization()(y)
        if stride != 1 or x.shape[-1] != filters:
            x = L.Conv2D(filters, 1, strides=stride, padding="same")(x)
        return L.Activation("relu")(L.Add()([x, y]))

    x = L.Conv2D(16, 3, padding="same")(x)
    x = L.BatchNormalization()(x)
    x = L.Activation("relu")(x)
    x = block(x, 16, 1)
    x = block(x, 32, 2)
    x = block(x, 64, 2)
    x = L.AveragePooling2D(pool_size=(x.shape[1], x.shape[2]))(x)
    x = L.Flatten()(x)
    return L.Dense(10, activation="softmax")(x)


def _ad_autoencoder(L, x):
    for units in (128, 128, 128, 128, 8, 128, 128, 128, 128):
        x = L.Dense(units)(x)
        x = L.BatchNormalization()(x)
        x = L.Activation("relu")(x)
    return L.Dense(640)(x)


def _mobilenet_vww(L, x):
    # MobileNetV1 at width 0.25: 3x3/2 stem, 13 depthwise-separable blocks, global average pool
    # (as an AveragePooling2D over the 3x3 map), 2-class softmax.
    x = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(x)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    blocks = [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2)] + [(128, 1)] * 5
    for filters, stride in blocks + [(256, 2), (256, 1)]:
        x = L.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(x)
        x = L.BatchNormalization()(x)
        x = L.ReLU()(x)
        x = L.Conv2D(filters, 1, use_bias=False)(x)
        x = L.BatchNormalization()(x)
        x = L.ReLU()(x)
    x = L.AveragePooling2D(pool_size=(x.shape[1], x.shape[2]))(x)
    x = L.Flatten()(x)
    return L.Dense(2, activation="softmax")(x)


def _streaming_ww(L, x):
    # DS-TCN: per block a (k, 1) depthwise conv over time (valid), a 1x1 conv, BatchNorm, ReLU;
    # the four valid kernels reduce 30 frames to 1, then Dense(3) gives the logits.
    for filters, k in zip((128, 64, 64, 32), (3, 5, 10, 15), strict=True):
        x = L.DepthwiseConv2D((k, 1), padding="valid", use_bias=False)(x)
        x = L.Conv2D(filters, 1, use_bias=False)(x)
        x = L.BatchNormalization()(x)
        x = L.Activation("relu")(x)
    x = L.Flatten()(x)
    return L.Dense(3)(x)


RECIPES: dict[str, tuple[tuple[int, ...], Callable]] = {
    "vibration_cnn1d": ((128, 3), _vibration_cnn1d),
    "kws_dscnn": ((49, 10, 1), _kws_dscnn),
    "resnet8_cifar": ((32, 32, 3), _resnet8_cifar),
    "ad_autoencoder": ((640,), _ad_autoencoder),
    "mobilenet_vww": ((96, 96, 3), _mobilenet_vww),
    "streaming_ww": ((30, 1, 40), _streaming_ww),
}


def build_benchmark_model(name: str, seed: int = 0) -> bytes:
    """Build, randomize and quantize one benchmark model (uncached; needs TensorFlow)."""
    if name not in RECIPES:
        raise ValueError(f"unknown benchmark model {name!r}; known: {sorted(RECIPES)}")
    with _quiet():
        import keras
        import tensorflow  # noqa: F401 - imported here so its start-up logs are silenced

    shape, recipe = RECIPES[name]
    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape, batch_size=1)
    model = keras.Model(inp, recipe(keras.layers, inp), name=name)
    randomize_batchnorm(model, seed)
    rep = np.random.default_rng(seed).normal(0.0, 1.0, size=(64, *shape)).astype(np.float32)
    return quantize_keras(model, rep)


def benchmark_model(name: str, seed: int = 0) -> bytes:
    """One benchmark model's .tflite bytes (cached under build/cache)."""
    return cached_tflite(
        "bench", {"name": name, "seed": seed}, lambda: build_benchmark_model(name, seed)
    )


def benchmark_models() -> dict[str, bytes]:
    """All benchmark models, name -> int8 .tflite bytes (built once, then cached)."""
    return {name: benchmark_model(name) for name in RECIPES}


if __name__ == "__main__":
    for n, b in benchmark_models().items():
        print(f"{n:18s} {len(b):8d} bytes  {cache_path('bench', {'name': n, 'seed': 0})}")
