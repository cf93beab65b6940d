"""Model zoo: small Keras 3 models sized for an ESP32 (a few thousand to ~50k parameters).

Every model uses only layers that convert to the bundle op set (FULLY_CONNECTED, CONV_2D,
DEPTHWISE_CONV_2D, MAX_POOL_2D, MEAN, ADD, MUL, SOFTMAX, RELU, RESHAPE, EXPAND_DIMS, ...):
no BatchNormalization (it would leave unfused MUL/ADD after Dense; dropout is enough here),
Conv1D/DepthwiseConv1D (EXPAND_DIMS + CONV_2D/DEPTHWISE_CONV_2D + RESHAPE), global average
pooling (MEAN). The autoencoder's scoring model computes its own anomaly score (mean squared
reconstruction error, via MUL/ADD/MEAN), so the board thresholds one int8 output.
TensorFlow is imported inside the functions only.
"""

from __future__ import annotations

from trainer.errors import TrainerError

CLASSIFIERS = ("mlp", "cnn1d", "dscnn")
ANOMALY = ("autoencoder",)


def build(name: str, input_shape: tuple[int, int], n_classes: int, batch_size: int | None = None):
    """A Keras model: classifiers end in softmax; 'autoencoder' reconstructs its input.

    batch_size=1 gives the deployable graph (static shapes: no SHAPE/PACK ops after conversion).
    """
    import keras
    from keras import layers

    inp = keras.Input(shape=input_shape, batch_size=batch_size, name="features")
    rows, ch = input_shape
    if name == "mlp":
        x = layers.Flatten()(inp)
        x = layers.Dense(64, activation="relu")(x)
        x = layers.Dropout(0.2)(x)
        x = layers.Dense(32, activation="relu")(x)
        out = layers.Dense(n_classes, activation="softmax", name="probs")(x)
    elif name == "cnn1d":
        x = layers.Conv1D(16, 5, padding="same", activation="relu")(inp)
        if rows >= 8:
            x = layers.MaxPooling1D(2)(x)
        x = layers.Conv1D(32, 3, padding="same", activation="relu")(x)
        if rows >= 16:
            x = layers.MaxPooling1D(2)(x)
        x = layers.Conv1D(32, 3, padding="same", activation="relu")(x)
        x = layers.GlobalAveragePooling1D()(x)
        x = layers.Dense(32, activation="relu")(x)
        out = layers.Dense(n_classes, activation="softmax", name="probs")(x)
    elif name == "dscnn":
        x = layers.Conv1D(24, 5, padding="same", activation="relu")(inp)
        for filters in (32, 48):
            x = layers.DepthwiseConv1D(3, padding="same", activation="relu")(x)
            x = layers.Conv1D(filters, 1, activation="relu")(x)
            if rows >= 8:
                x = layers.MaxPooling1D(2)(x)
                rows //= 2
        x = layers.GlobalAveragePooling1D()(x)
        out = layers.Dense(n_classes, activation="softmax", name="probs")(x)
    elif name == "autoencoder":
        n = rows * ch
        x = layers.Flatten()(inp)
        x = layers.GaussianNoise(0.1)(x)  # denoising AE: generalises across operating points
        x = layers.Dense(32, activation="relu")(x)
        x = layers.Dense(8, activation="relu")(x)
        x = layers.Dense(32, activation="relu")(x)
        x = layers.Dense(n)(x)
        out = layers.Reshape(input_shape, name="reconstruction")(x)
    else:
        raise TrainerError(f"unknown model {name!r}; known: {', '.join(CLASSIFIERS + ANOMALY)}")
    return keras.Model(inp, out, name=name)


def deployable(model, name: str, input_shape: tuple[int, int], n_classes: int, anomaly: bool):
    """The trained model rebuilt with batch size 1 (what is converted and put on the board)."""
    fixed = build(name, input_shape, n_classes, batch_size=1)
    fixed.set_weights(model.get_weights())
    return anomaly_scorer(fixed, batch_size=1) if anomaly else fixed


def anomaly_scorer(autoencoder, batch_size: int | None = None):
    """input -> mean((input - reconstruction)^2): one score per window, in model ops only."""
    import keras
    from keras import layers

    shape = autoencoder.input_shape[1:]
    inp = keras.Input(shape=shape, batch_size=batch_size, name="features")
    rec = autoencoder(inp)
    diff = layers.Add()([inp, layers.Rescaling(-1.0)(rec)])
    sq = layers.Multiply()([diff, diff])
    flat = layers.Reshape((shape[0] * shape[1], 1))(sq)
    score = layers.GlobalAveragePooling1D(name="score")(flat)
    return keras.Model(inp, score, name="anomaly_score")


def count_macs(model) -> int:
    """Multiply-accumulates per inference of the layers that matter on the board."""
    from keras import layers

    macs = 0
    for layer in _flat_layers(model):
        if isinstance(layer, layers.Dense):
            macs += int(layer.kernel.shape[0] * layer.kernel.shape[1])
        elif isinstance(layer, layers.DepthwiseConv1D):
            out_len = layer.output.shape[1]
            k, c, m = layer.kernel.shape
            macs += int(out_len * k * c * m)
        elif isinstance(layer, layers.Conv1D):
            out_len = layer.output.shape[1]
            k, cin, cout = layer.kernel.shape
            macs += int(out_len * k * cin * cout)
    return macs


def _flat_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            yield from _flat_layers(layer)
        else:
            yield layer
