"""Test-model factory: int8 .tflite models built without TensorFlow (singleop), random Keras
architectures quantized by TensorFlow (keras_models), the TFLM reference runner (tflm) and
hypothesis strategies (strategies) shared by the exactness, converter and runtime tests."""

from factory.tflm import random_inputs, run_tflm

__all__ = ["random_inputs", "run_tflm"]
