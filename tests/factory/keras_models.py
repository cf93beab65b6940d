"""Random Keras 3 architectures from a seed, quantized by TensorFlow full-integer PTQ.

`architecture(seed)` draws a JSON-able spec (family dense / 1d / 2d; Dense, Conv1D, Conv2D,
DepthwiseConv2D, SeparableConv1D/2D, pools, global average pooling, BatchNorm, ZeroPadding,
the activations relu, relu6, sigmoid, tanh, softmax, leaky_relu, hard_silu, and Add / Multiply /
Concatenate branches). `keras_tflite(seed)` builds it with seeded weights, quantizes it (int8 in
and out, TFLITE_BUILTINS_INT8) and caches the .tflite under build/cache/, so only the first test
run imports TensorFlow. Inputs use batch size 1, as on a microcontroller (a dynamic batch
makes TF emit SHAPE/PACK for Flatten). Dilated convolutions are left to the single-op sweep:
TF lowers them to SPACE_TO_BATCH_ND, outside our op set.
"""

from __future__ import annotations

import random

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from benchmarks.models import cache_path, cached_tflite, quantize_keras, randomize_batchnorm
from converters import registry

SUPPORTED_OPS = frozenset(registry.SUPPORTED_OPS)
_OP_NAMES = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
GENERATOR_VERSION = 3

ACTS = ["relu", "relu6", "sigmoid", "tanh", "leaky_relu", "hard_silu", "softmax", None]
FUSABLE = ["relu", "relu6", None]


def tflite_ops(model: bytes) -> list[str]:
    """Builtin op names of subgraph 0, in execution order."""
    m = fb.Model.GetRootAs(bytes(model), 0)
    sg = m.Subgraphs(0)
    names = []
    for i in range(sg.OperatorsLength()):
        code = m.OperatorCodes(sg.Operators(i).OpcodeIndex())
        names.append(_OP_NAMES[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())])
    return names


# ---------------------------------------------------------------- spec generation


def _act_block(r: random.Random) -> dict:
    act = r.choice([a for a in ACTS if a])
    blk = {"t": "act", "act": act}
    if act == "leaky_relu":
        blk["alpha"] = r.choice([0.01, 0.1, 0.2, 0.3])
    return blk


def _spatial_block(r: random.Random, dims: int, shape: list[int], shape_preserving: bool) -> dict:
    """One layer for a 1d/2d feature map; updates `shape` ([*spatial, channels]) in place."""
    kinds = ["conv", "conv", "dw", "sep", "act", "bn"]
    if not shape_preserving:
        kinds += ["pool", "zpad", "conv_strided"]
    kind = r.choice(kinds)
    spatial, ch = shape[:-1], shape[-1]
    if kind == "pool" and min(spatial) < 2:
        kind = "conv"
    if kind in ("conv", "conv_strided", "sep"):
        k = r.choice([1, 3, 3, 5]) if dims == 1 else r.choice([1, 3, 3])
        strides = 2 if kind == "conv_strided" and min(spatial) >= 2 * k else 1
        padding = "same" if shape_preserving or r.random() < 0.6 else "valid"
        if padding == "valid" and min(spatial) < k:
            padding = "same"
        filters = ch if shape_preserving else r.choice([4, 8, 12, 16])
        blk = {"t": "sep" if kind == "sep" else "conv", "filters": filters, "k": k,
               "strides": strides, "padding": padding, "act": r.choice(FUSABLE),
               "bn": r.random() < 0.4}  # fmt: skip
        out = [(s + strides - 1) // strides if padding == "same" else (s - k) // strides + 1
               for s in spatial]  # fmt: skip
        shape[:] = [*out, filters]
        return blk
    if kind == "dw":
        k = 3
        dm = 1 if shape_preserving else r.choice([1, 1, 2])
        padding = "same" if shape_preserving or min(spatial) < k or r.random() < 0.6 else "valid"
        out = spatial if padding == "same" else [s - k + 1 for s in spatial]
        shape[:] = [*out, ch * dm]
        return {"t": "dw", "k": k, "dm": dm, "padding": padding, "act": r.choice(FUSABLE),
                "bn": r.random() < 0.4}  # fmt: skip
    if kind == "pool":
        size = 2
        strides = r.choice([1, 2, 2])
        padding = r.choice(["valid", "same"])
        out = [(s + strides - 1) // strides if padding == "same" else (s - size) // strides + 1
               for s in spatial]  # fmt: skip
        shape[:] = [*out, ch]
        return {"t": "pool", "kind": r.choice(["max", "avg"]), "size": size, "strides": strides,
                "padding": padding}  # fmt: skip
    if kind == "zpad":
        pads = [[r.randint(0, 2), r.randint(0, 2)] for _ in spatial]
        shape[:] = [s + a + b for s, (a, b) in zip(spatial, pads, strict=True)] + [ch]
        return {"t": "zpad", "pads": pads}
    if kind == "bn":
        return {"t": "bn"}
    return _act_block(r)


def _branch(r: random.Random, family: str, shape: list[int]) -> dict:
    merge = r.choice(["add", "mul", "concat"])
    sides = []
    for _ in range(2):
        n = r.choice([0, 1, 1, 2])
        side = []
        for _ in range(n):
            if family == "dense":
                side.append(_dense_block(r, shape, preserving=True))
            else:
                side.append(_spatial_block(r, len(shape) - 1, shape, shape_preserving=True))
        sides.append(side)
    if not sides[0] and not sides[1]:
        sides[0] = [_act_block(r)]
    if merge == "concat":  # both sides keep the shape: channels double
        shape[-1] = shape[-1] * 2
    return {"t": "branch", "merge": merge, "left": sides[0], "right": sides[1]}


def _dense_block(r: random.Random, shape: list[int], preserving: bool = False) -> dict:
    kind = r.choice(["dense", "dense", "act", "bn"])
    if kind == "dense":
        units = shape[-1] if preserving else r.choice([4, 8, 16, 24, 32])
        shape[-1] = units
        return {"t": "dense", "units": units, "act": r.choice(FUSABLE), "bn": r.random() < 0.3}
    if kind == "bn":
        return {"t": "bn"}
    return _act_block(r)


def architecture(seed: int) -> dict:
    """A random architecture spec (deterministic in seed; JSON-able; also the cache key)."""
    r = random.Random(seed * 7919 + GENERATOR_VERSION)
    family = r.choice(["dense", "1d", "1d", "2d", "2d", "2d"])
    if family == "dense":
        shape = [r.choice([8, 16, 32, 64])]
    elif family == "1d":
        shape = [r.choice([16, 24, 32, 48]), r.choice([1, 2, 3, 4])]
    else:
        shape = [r.choice([6, 8, 10, 12]), r.choice([6, 8, 10, 12]), r.choice([1, 2, 3])]
    inp = list(shape)
    blocks = []
    for _ in range(r.randint(2, 6)):
        if r.random() < 0.25:
            blocks.append(_branch(r, family, shape))
        elif family == "dense":
            blocks.append(_dense_block(r, shape))
        else:
            blocks.append(_spatial_block(r, len(shape) - 1, shape, shape_preserving=False))
    head: dict = {"units": r.choice([2, 3, 5, 10]),
                  "out_act": r.choice(["softmax", "softmax", "sigmoid", "tanh", None])}  # fmt: skip
    if family != "dense":
        head["reduce"] = r.choice(["gap", "gap", "flatten"])
        head["hidden"] = r.choice([0, 0, 8, 16])
    return {"v": GENERATOR_VERSION, "seed": seed, "family": family, "input": inp,
            "blocks": blocks, "head": head}  # fmt: skip


# ---------------------------------------------------------------- Keras construction


def _activation(L, blk: dict):
    if blk["act"] == "leaky_relu":
        return L.LeakyReLU(negative_slope=blk.get("alpha", 0.2))
    if blk["act"] == "softmax":
        return L.Softmax(axis=-1)
    return L.Activation(blk["act"])


def _apply(L, blk: dict, x, dims: int):
    t = blk["t"]
    if t == "act":
        return _activation(L, blk)(x)
    if t == "bn":
        return L.BatchNormalization()(x)
    if t == "dense":
        x = L.Dense(blk["units"], activation=None if blk["bn"] else blk["act"])(x)
    elif t == "conv":
        conv = L.Conv1D if dims == 1 else L.Conv2D
        x = conv(blk["filters"], blk["k"], strides=blk["strides"], padding=blk["padding"],
                 activation=None if blk["bn"] else blk["act"])(x)  # fmt: skip
    elif t == "sep":
        conv = L.SeparableConv1D if dims == 1 else L.SeparableConv2D
        x = conv(blk["filters"], blk["k"], strides=blk["strides"], padding=blk["padding"],
                 activation=None if blk["bn"] else blk["act"])(x)  # fmt: skip
    elif t == "dw":
        conv = L.DepthwiseConv1D if dims == 1 else L.DepthwiseConv2D
        x = conv(blk["k"], depth_multiplier=blk["dm"], padding=blk["padding"],
                 activation=None if blk["bn"] else blk["act"])(x)  # fmt: skip
    elif t == "pool":
        if dims == 1:
            pool = L.MaxPooling1D if blk["kind"] == "max" else L.AveragePooling1D
        else:
            pool = L.MaxPooling2D if blk["kind"] == "max" else L.AveragePooling2D
        return pool(blk["size"], strides=blk["strides"], padding=blk["padding"])(x)
    elif t == "zpad":
        if dims == 1:
            return L.ZeroPadding1D(tuple(blk["pads"][0]))(x)
        return L.ZeroPadding2D(tuple(tuple(p) for p in blk["pads"]))(x)
    elif t == "branch":
        a, b = x, x
        for sub in blk["left"]:
            a = _apply(L, sub, a, dims)
        for sub in blk["right"]:
            b = _apply(L, sub, b, dims)
        merge = {"add": L.Add, "mul": L.Multiply, "concat": L.Concatenate}[blk["merge"]]
        return merge()([a, b])
    else:
        raise ValueError(f"keras_models: unknown block type {t!r} in {blk}")
    if blk.get("bn"):
        x = L.BatchNormalization()(x)
        if blk["act"]:
            x = L.Activation(blk["act"])(x)
    return x


def build_keras(spec: dict, rep: np.ndarray | None = None):
    """The (float) Keras model for a spec, with weights seeded by spec['seed'].

    With representative data, the output layer is rescaled so its logits spread about +-2 over
    that data: random weights after global pooling otherwise give near-constant logits, and a
    softmax/sigmoid/tanh head would then emit one code for every input, hiding errors upstream.
    """
    import keras

    L = keras.layers
    keras.utils.set_random_seed(spec["seed"])
    inp = keras.Input(tuple(spec["input"]), batch_size=1)
    dims = 0 if spec["family"] == "dense" else len(spec["input"]) - 1
    x = inp
    for blk in spec["blocks"]:
        x = _apply(L, blk, x, dims)
    head = spec["head"]
    if dims:
        if head["reduce"] == "gap":
            x = (L.GlobalAveragePooling1D() if dims == 1 else L.GlobalAveragePooling2D())(x)
        else:
            x = L.Flatten()(x)
        if head["hidden"]:
            x = L.Dense(head["hidden"], activation="relu")(x)
    features = x
    out_layer = L.Dense(head["units"])
    x = out_layer(x)
    if head["out_act"]:
        x = L.Activation(head["out_act"])(x)
    model = keras.Model(inp, x, name=f"random_{spec['seed']}")
    randomize_batchnorm(model, spec["seed"])
    if rep is not None:
        f = keras.Model(inp, features).predict(rep, batch_size=1, verbose=0)
        kernel, _ = out_layer.get_weights()
        centre = f.mean(axis=0)
        spread = float(((f - centre) @ kernel).std()) or 1.0
        kernel = kernel * (2.0 / spread)
        # zero-mean logits per class: otherwise the scaled-up class offsets decide every input
        out_layer.set_weights([kernel, (-centre @ kernel).astype(np.float32)])
    return model


def representative(spec: dict, n: int = 48) -> np.ndarray:
    rng = np.random.default_rng(spec["seed"])
    return rng.normal(0.0, 1.0, size=(n, *spec["input"])).astype(np.float32)


class TFConversionFailed(RuntimeError):
    """TensorFlow's own converter rejected a generated architecture (a TF limitation/bug)."""


def keras_tflite(seed: int, float_io: bool = False) -> bytes:
    """The int8 .tflite for architecture(seed), from build/cache when already converted.
    float_io=True keeps float32 input/output (QUANTIZE and DEQUANTIZE at the model's edges).

    A TF converter failure is remembered next to the cache entry (.failed), so later runs skip
    the seed without importing TensorFlow again."""
    spec = architecture(seed)
    kind = "keras-fio" if float_io else "keras"
    failed = cache_path(kind, spec).with_suffix(".failed")
    if failed.exists():
        raise TFConversionFailed(f"seed {seed}: {failed.read_text()[:500]}")
    rep = representative(spec)

    def build() -> bytes:
        try:
            return quantize_keras(build_keras(spec, rep), rep, int8_io=not float_io)
        except Exception as exc:  # TF raises many types (ConverterError, ValueError, ...)
            failed.parent.mkdir(parents=True, exist_ok=True)
            failed.write_text(f"{type(exc).__name__}: {exc}")
            raise TFConversionFailed(f"seed {seed}: {type(exc).__name__}: {exc}") from exc

    return cached_tflite(kind, spec, build)


def cache_path_for(seed: int):
    """Where keras_tflite(seed) is cached (build/cache/keras-<hash>.tflite)."""
    return cache_path("keras", architecture(seed))


def is_supported(model: bytes) -> bool:
    return set(tflite_ops(model)) <= SUPPORTED_OPS


def is_lively(model: bytes, n: int = 10, min_distinct: int = 4) -> bool:
    """Whether outputs vary with the input: random nets sometimes squash every input to one
    code (a pooled feature whose spread is below one quantization step), which would hide
    errors upstream; such seeds are skipped by `usable_seeds`."""
    from factory.tflm import io_details, random_inputs, run_tflm

    ins, _ = io_details(model)
    y = run_tflm(model, random_inputs(tuple(ins[0]["shape"]), n, seed=7))
    return len(np.unique(y)) >= min_distinct


def usable_seeds(n: int, start: int = 0, limit: int = 200) -> list[int]:
    """The first n seeds from `start` whose model uses only our op set and has lively outputs."""
    seeds = []
    for seed in range(start, start + limit):
        try:
            model = keras_tflite(seed)
        except TFConversionFailed:
            continue
        if is_supported(model) and is_lively(model):
            seeds.append(seed)
            if len(seeds) == n:
                return seeds
    raise RuntimeError(f"only {len(seeds)} of seeds {start}..{start + limit} are usable")
