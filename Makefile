# sdpipe developer commands. `make run` and `make test` are the README's two commands.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install sample bench bench-quick clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
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

clean:
	rm -rf output .pytest_cache
