"""The fit check for a board's word size: `convert --board esp32` (a 32-bit chip) decides with the
32-bit estimate, the x64 virtual board with the 64-bit one, and the 32-bit estimate is never
short: every benchmark model it accepts for the esp32 profile loads and runs as TFLM on a
32-bit board (micropython-esp32sem: `make test-esp32sem`) whose heap is exactly the estimate.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from factory import exact

import converters
from benchmarks.models import benchmark_model
from converters.errors import ConvertError
from edgeloop.boards import get_board
from edgeloop.infer import run_batch_virtual
from edgeloop.vboard import identify

ESP32 = get_board("esp32")


def test_fit_uses_the_boards_word_size() -> None:
    """ResNet-8 streamed: ~99.8 KB for a 32-bit ESP32 (fits 100 KB), ~106 KB on the x64 port."""
    tflite = benchmark_model("resnet8_cifar")
    conv = converters.convert_tflite(tflite, heap_limit=ESP32.heap_bytes, word_bits=32)
    rep = conv.report
    assert rep["fits"] and rep["memory_mode"] == "stream"
    assert rep["estimate_word_bits"] == 32
    assert rep["estimated_heap_bytes"] == rep["heap"]["esp32_bytes"] <= ESP32.heap_bytes
    assert rep["heap"]["total_bytes"] > ESP32.heap_bytes  # the 64-bit figure would refuse it
    with pytest.raises(ConvertError, match="on a 64-bit board"):
        converters.convert_tflite(tflite, heap_limit=ESP32.heap_bytes, word_bits=64)
    default = converters.convert_tflite(tflite).report  # no board: the larger, 64-bit figure
    assert default["estimate_word_bits"] == 64
    assert default["estimated_heap_bytes"] == default["heap"]["total_bytes"]
    with pytest.raises(ValueError, match="word_bits"):
        converters.convert_tflite(tflite, word_bits=16)


def test_profiles_say_their_word_size() -> None:
    assert ESP32.word_bits == 32 and get_board("esp32c3").word_bits == 32
    assert get_board("virtual").word_bits == 64


# Accepted for the esp32 profile by the 32-bit estimate: in RAM (kws_dscnn, the largest that is
# read whole) and streamed (ResNet-8, the AD autoencoder). Refused: mobilenet_vww (~134 KB).
ACCEPTED = ["kws_dscnn", "streaming_ww", "ad_autoencoder", "resnet8_cifar"]


@pytest.mark.parametrize("name", ACCEPTED)
def test_32bit_estimate_is_enough_on_a_32bit_board(name: str) -> None:
    if identify().word_bits != 32:
        pytest.skip("needs a 32-bit board: EDGELOOP_MICROPYTHON=.../micropython-esp32sem "
                    "(make test-esp32sem); the x64 port's objects are ~1.6x larger")
    tflite = benchmark_model(name)
    conv = converters.convert_tflite(tflite, heap_limit=ESP32.heap_bytes, word_bits=32)
    est = conv.report["estimated_heap_bytes"]
    x = exact.model_inputs(tflite, 1, 0)
    y, stats = run_batch_virtual(conv.bundle, x, replace(ESP32, heap_bytes=est),
                                 kernels="viper", timeout=900)
    exact.matches_tflm(y, tflite, x, f"32-bit board, heap = 32-bit estimate {est} B", name)
    in_use = est - stats["heap_free_after_load"]
    print(f"{name}: {conv.report['memory_mode']}, 32-bit estimate {est} B, 64-bit "
          f"{conv.report['heap']['total_bytes']} B, model heap {stats['model_heap_bytes']} B, "
          f"in use after load {in_use} B, free after load {stats['heap_free_after_load']} B")
    assert stats["kernels"] == "viper"


def test_bench_reports_the_esp32_profile_truthfully(monkeypatch) -> None:
    """`make bench`'s 100 KB line: run on a 32-bit board when there is one, else says it was not
    run and names the 64-bit figure as such (benchmarks/esp32fit.py)."""
    from benchmarks import esp32fit
    from benchmarks.runtime import bench_inputs, run_tflm

    tflite = benchmark_model("vibration_cnn1d")
    x = bench_inputs(tuple(converters.convert_tflite(tflite).report["inputs"][0]["shape"]), 2, 0)
    y = run_tflm(tflite, x)["y"]
    monkeypatch.setattr(esp32fit, "esp32sem", lambda: None)
    row = esp32fit.esp32_fit(tflite, x, y)
    assert row["fits"] and row["word_bits"] == 32 and row["measured"] is None
    line = esp32fit.format_rows([{"model": "vib", "esp32": row}])[1]
    assert "not run" in line and "64-bit estimate" in line
    big = esp32fit.esp32_fit(benchmark_model("mobilenet_vww"), x[:0], y[:0])
    assert not big["fits"] and big["stream_heap"]["esp32_bytes"] > ESP32.heap_bytes
    assert "refused" in esp32fit.format_rows([{"model": "vww", "esp32": big}])[1]
    from benchmarks.board32 import esp32sem

    exe = esp32sem()
    if exe is None:
        return
    monkeypatch.setattr(esp32fit, "esp32sem", lambda: exe)
    m = esp32fit.esp32_fit(tflite, x, y)["measured"]
    assert m["word_bits"] == 32 and m["identical"], m
    assert 0 < m["heap_in_use_after_load"] <= row["estimate_32bit_bytes"]


def test_x64_port_says_why_a_32bit_fit_does_not_load() -> None:
    """ResNet-8 fits the ESP32 (32-bit) but not 100 KB of the x64 port: the error says so."""
    from edgeloop.infer import InferError

    if identify().word_bits != 64:
        pytest.skip("the 64-bit virtual board's message")
    tflite = benchmark_model("resnet8_cifar")
    conv = converters.convert_tflite(tflite, heap_limit=ESP32.heap_bytes, word_bits=32)
    with pytest.raises(InferError, match="this virtual board is 64-bit, the esp32 profile 32-bit"):
        run_batch_virtual(conv.bundle, exact.model_inputs(tflite, 1, 0), ESP32, kernels="viper")
