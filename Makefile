# EdgeLoop: `make demo` and `make test` work on a fresh clone with only Python 3.10+ and make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.edgeloop-installed

.PHONY: install demo test test-esp32sem lint bench hil kernels generated clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/edgeloop demo

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q -n 2 tests hil_tests

# Every board-side test (runtime, exactness, viper kernels, preprocessing, drivers, app, link, fleet,
# HIL) again on another MicroPython executable, e.g. the 32-bit float32 build with an ESP32's
# arithmetic: EDGELOOP_MICROPYTHON=../shared/tools/micropython-esp32sem make test-esp32sem
BOARD_TESTS := tests/test_foundation.py tests/runtime tests/exactness tests/viper \
	tests/trainer/test_preprocess_board.py tests/trainer/test_any_window.py tests/boards \
	tests/hil tests/fleet hil_tests tests/collect/test_board_script.py tests/collect/test_burst.py \
	tests/field/test_ring.py tests/field/test_pull.py
test-esp32sem: $(STAMP)
ifeq ($(strip $(EDGELOOP_MICROPYTHON)),)
	@echo "test-esp32sem: skipped: no board executable given (EDGELOOP_MICROPYTHON=../shared/tools/micropython-esp32sem make test-esp32sem)"
else
	@test -x "$(abspath $(EDGELOOP_MICROPYTHON))" || { echo "test-esp32sem: EDGELOOP_MICROPYTHON=$(EDGELOOP_MICROPYTHON): no executable file there"; exit 2; }
	@EDGELOOP_MICROPYTHON=$(abspath $(EDGELOOP_MICROPYTHON)) $(PY) -c "from edgeloop.vboard import identify; \
	b = identify(); print(f'test-esp32sem: {b.executable}: MicroPython {b.version}, .mpy {b.mpy_arch}, {b.word_bits}-bit words, {b.smallint_bits}-bit small ints, float{b.float_bits}')"
	EDGELOOP_MICROPYTHON=$(abspath $(EDGELOOP_MICROPYTHON)) $(PY) -m pytest -q -n 2 $(BOARD_TESTS)
endif

lint: $(STAMP)
	$(PY) -m ruff check .

# the esp32-profile line runs on micropython-esp32sem ($EDGELOOP_ESP32SEM, or ../shared/tools) when there is one
bench: $(STAMP)
	$(PY) -m benchmarks.runtime
	$(PY) -m benchmarks.link
	$(PY) -m benchmarks.fleet
	$(PY) -m benchmarks.train

kernels:  # regenerate elrt/kv_*.py from firmware_micropython/elrt/src/kernels_viper.tpl
	$(PYTHON) tools/gen_kernels.py

generated: kernels  # every generated file: the kernels and elrt/optable.py (converters/registry.py)
	$(PYTHON) tools/gen_optable.py

hil: $(STAMP)
	$(VENV)/bin/edgeloop hil --board virtual

clean:
	rm -rf build .pytest_cache .hypothesis
