# sdpipe developer commands. `make run` and `make test` are the README's two commands.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install sample bench bench-quick clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test,bench]'
	touch $(STAMP)

install: $(STAMP)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch node_modules/.installed

## Set up and run taxi-speed on the bundled sample.
run: $(STAMP)
	$(BIN)/sdpipe run taxi-speed

## Set up (Python packages and the Azurite emulator) and run the whole test suite.
test: $(STAMP) node_modules/.installed
	$(BIN)/python -m pytest

## Regenerate the bundled sample with sdpipe's own generator (deterministic).
sample: $(STAMP)
	$(BIN)/sdpipe generate taxi --rows 6000 --months 3 --seed 2017 --output data/sample --dirty
	rm -rf data/sample/batches/inbound
	$(BIN)/sdpipe generate batches --seed 2024 --output data/sample/batches/inbound
	$(BIN)/sdpipe generate messages --runs 3 --messages 600 --seed 2024 --output data/sample/messages

## Benchmark taxi-speed against DuckDB and Polars and update docs/benchmarks.md.
## BENCH_ROWS trips (default 20 M), BENCH_RUNS interleaved runs each; data goes to
## $SDPIPE_BENCH_DIR (default /tmp/sdpipe-bench), outside the repository.
BENCH_ROWS ?= 20000000
BENCH_RUNS ?= 3
bench: $(STAMP)
	$(BIN)/python benchmarks/taxi_speed.py --rows $(BENCH_ROWS) --runs $(BENCH_RUNS)

## The same benchmark on 2 M rows: a few minutes from a fresh clone.
bench-quick: $(STAMP)
	$(BIN)/python benchmarks/taxi_speed.py --rows 2000000 --runs 3

clean:
	rm -rf output .pytest_cache
