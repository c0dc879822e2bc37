# iotids: `make demo` runs the main job, `make test` runs the tests. Both set up .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# The data it finds: CIC's archive where `iotids data download` puts it, else the real rows beside the repository.
DATA ?= $(firstword $(wildcard data/MachineLearningCSV.zip) ../shared/data/cicids2017-improved)
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
	$(BIN)/iotids train --data $(DATA) --out $(OUT) --seed 0
	$(BIN)/iotids export --model $(OUT)
	@echo "report: $(OUT)/report.html (and report.md); metrics: $(OUT)/metrics.json"
	@echo "next: $(BIN)/iotids detect --model $(OUT) --input FLOWS.csv"

test: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest

# Every benchmark of BENCHMARKS.md (long: over an hour); detect and serve use the demo's model.
bench: demo
	for b in load scale flows train compare; do $(BIN)/python benchmarks/bench_$$b.py || exit 1; done
	$(BIN)/python benchmarks/bench_detect.py --model $(OUT)
	$(BIN)/python benchmarks/bench_serve.py --model $(OUT)

clean:
	rm -rf $(VENV) runs build src/*.egg-info .pytest_cache .ruff_cache
