"""EdgeLoop: train, quantize, convert, deploy and verify int8 models on ESP32 boards."""

__version__ = "0.1.0"
