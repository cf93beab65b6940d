"""Helpers the fleet tests import (conftest fixtures use them too)."""

from __future__ import annotations


def fc_model(seed: int) -> bytes:
    """A small int8 model for the app's 32x3 window (FULLY_CONNECTED 96 -> 3), as a bundle."""
    from factory.singleop import fully_connected

    from converters import convert_tflite

    return convert_tflite(fully_connected(in_features=96, units=3, seed=seed)).bundle


def fc_model_inputs(in_features: int, seed: int) -> bytes:
    """fc_model with another input size (a model the app's window does not fit)."""
    from factory.singleop import fully_connected

    from converters import convert_tflite

    return convert_tflite(fully_connected(in_features=in_features, units=3, seed=seed)).bundle
