"""`edgeloop convert`: bundle + report.json + optional TFLM C header, and the does-not-fit path."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from factory import singleop
from numpy.testing import assert_array_equal
from typer.testing import CliRunner

from converters import ConvertError
from converters.c_array import tflite_c_header
from converters.golden import run_bundle
from edgeloop.cli import app


@pytest.fixture
def model_file(tmp_path):
    p = tmp_path / "kws.tflite"
    p.write_bytes(singleop.build("CONV_2D", h=10, w=6, cin=2, cout=4, seed=5))
    return p


def test_convert_writes_bundle_and_report(tmp_path, model_file):
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["convert", str(model_file), "--board", "esp32", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "CONV_2D" in res.output and "fits" in res.output
    report = json.loads((out / "report.json").read_text())
    assert report["board"] == "esp32" and report["fits"] is True
    assert report["heap_limit_bytes"] == 100 * 1024
    # a real ESP32 is 32-bit: the fit is decided (and reported) with the 32-bit estimate
    assert report["estimate_word_bits"] == 32
    assert report["estimated_heap_bytes"] == report["heap"]["esp32_bytes"]
    assert report["ops"][0]["macs"] == 10 * 6 * 4 * 3 * 3 * 2
    bundle = (out / "model.elb").read_bytes()
    assert report["bundle_bytes"] == len(bundle)
    x = np.zeros((1, 1, 10, 6, 2), np.int8)
    assert run_bundle(bundle, x).shape == (1, 10, 6, 4)


def test_convert_streams_weights_that_do_not_fit(tmp_path):
    """128 KB of FC weights do not fit an ESP32's heap: convert picks streaming and says so."""
    big = tmp_path / "big.tflite"
    big.write_bytes(singleop.build("FULLY_CONNECTED", in_features=512, units=256, seed=1))
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["convert", str(big), "--board", "esp32", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "memory mode: stream" in res.output
    report = json.loads((out / "report.json").read_text())
    assert report["fits"] and report["memory_mode"] == "stream"
    assert report["heap"]["weights_in_ram_bytes"] == 0
    assert report["estimated_heap_bytes"] <= 102400


def test_convert_refuses_when_it_does_not_fit(tmp_path):
    big = tmp_path / "big.tflite"  # its activations alone exceed the ESP32's heap
    big.write_bytes(singleop.build("CONV_2D", h=96, w=96, cin=8, cout=8, seed=1))
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["convert", str(big), "--board", "esp32", "-o", str(out)])
    assert isinstance(res.exception, ConvertError)
    assert "does not fit" in str(res.exception) and "102400" in str(res.exception)
    report = json.loads((out / "report.json").read_text())
    assert report["fits"] is False and not (out / "model.elb").exists()
    ok = CliRunner().invoke(app, ["convert", str(big), "--board", "esp32s3", "-o", str(out)])
    assert ok.exit_code == 0, ok.output


def test_convert_json_and_c_header(tmp_path, model_file):
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["convert", str(model_file), "-o", str(out), "--c-header",
                                   "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["tflite_bytes"] == model_file.stat().st_size
    assert "g_kws_model[]" in (out / "model_data.h").read_text()


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs a C compiler")
def test_c_header_compiles_to_the_same_bytes(tmp_path):
    data = singleop.build("FULLY_CONNECTED", seed=2)
    (tmp_path / "model_data.h").write_text(tflite_c_header(data, "g_model"))
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include "model_data.h"\n'
        "int main(void){fwrite(g_model,1,g_model_len,stdout);"
        "return ((unsigned long)g_model % 16) != 0;}\n"
    )
    subprocess.run(["gcc", "-std=c11", "-o", str(tmp_path / "m"), str(tmp_path / "main.c")],
                   check=True)
    got = subprocess.run([str(tmp_path / "m")], check=True, capture_output=True).stdout
    assert_array_equal(np.frombuffer(got, np.uint8), np.frombuffer(data, np.uint8))


@pytest.mark.parametrize("damage", ["truncate", "text"])
def test_convert_names_the_file_of_a_damaged_tflite(tmp_path, model_file, damage):
    bad = tmp_path / "bad.tflite"
    raw = model_file.read_bytes()
    bad.write_bytes(raw[: len(raw) // 3] if damage == "truncate" else b"hello\n")
    res = CliRunner().invoke(app, ["convert", str(bad), "-o", str(tmp_path / "out")])
    assert isinstance(res.exception, ConvertError)
    assert str(res.exception).startswith(f"{bad}: ")
    assert "truncated" in str(res.exception) or "TFL3" in str(res.exception)


def test_convert_says_a_bundle_is_already_converted(tmp_path, model_file):
    out = tmp_path / "out"
    assert CliRunner().invoke(app, ["convert", str(model_file), "-o", str(out)]).exit_code == 0
    res = CliRunner().invoke(app, ["convert", str(out / "model.elb"), "-o", str(tmp_path / "o2")])
    assert isinstance(res.exception, ConvertError)
    assert "is already an EdgeLoop bundle" in str(res.exception)


def test_convert_names_the_chip_and_leaves_no_empty_folder(tmp_path, model_file):
    """The heap line named "32-bit ESP32" for every board and wrapped mid-phrase; a failed
    convert left an empty output folder behind."""
    out = tmp_path / "c3"
    res = CliRunner().invoke(app, ["convert", str(model_file), "--board", "esp32c3", "-o", str(out)])
    assert res.exit_code == 0, res.output
    heap = next(ln for ln in res.output.splitlines() if ln.startswith("estimated heap"))
    assert "(32-bit words, as on the ESP32-C3; ~" in heap  # one unbroken line
    assert heap.rstrip().endswith("B on the 64-bit x64 port)")
    assert "32-bit ESP32" not in res.output
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model at all")
    res = CliRunner().invoke(app, ["convert", str(bad), "-o", str(tmp_path / "none")])
    assert isinstance(res.exception, ConvertError) and not (tmp_path / "none").exists()
