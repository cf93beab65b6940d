# EdgeLoop: `make demo` and `make test` work on a fresh clone with only Python 3.10+ and make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.edgeloop-installed

.PHONY: install demo test lint bench hil kernels clean

$(STAMP): pyproject.toml
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

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) -m benchmarks.runtime
	$(PY) -m benchmarks.link
	$(PY) -m benchmarks.train

kernels:  # regenerate elrt/kv_*.py from firmware_micropython/elrt/src/kernels_viper.tpl
	$(PYTHON) tools/gen_kernels.py

hil: $(STAMP)
	$(VENV)/bin/edgeloop hil --board virtual

clean:
	rm -rf build .pytest_cache .hypothesis
