# iotids: `make demo` runs the main job, `make test` runs the tests. Both set up .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data/cicids2017-improved
OUT ?= runs/demo

.PHONY: venv demo test lint bench clean

$(BIN)/iotids: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/iotids

demo: venv
	$(BIN)/iotids data inspect $(DATA)

test: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest

bench: venv
	$(BIN)/python benchmarks/bench_load.py

clean:
	rm -rf $(VENV) runs build src/*.egg-info .pytest_cache .ruff_cache
