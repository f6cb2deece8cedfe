# Two commands do all the set-up on a fresh machine:
#   make run    create .venv, install, start the server on the bundled default model
#   make test   create .venv, install, run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
# The AiBrary SDK pins openai<2, so its check (tests/test_aibrary.py) runs in a
# virtualenv of its own; openai 1.109.1 is the newest 1.x.
SDK_VENV    = .venv-aibrary
SDK_STAMP   = $(SDK_VENV)/.installed
AIBRARY_PINS = aibrary==0.0.3 openai==1.109.1

.PHONY: install run test check wheel bench bench-batch bench-doors bench-calls soak clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,bench,dev]'
	touch $(STAMP)

$(SDK_STAMP): Makefile constraints-aibrary.txt
	$(PYTHON) -m venv $(SDK_VENV)
	$(SDK_VENV)/bin/python -m pip install --quiet -c constraints-aibrary.txt $(AIBRARY_PINS)
	touch $(SDK_STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/stt-gateway serve $(ARGS)

test: $(STAMP) $(SDK_STAMP)
	$(BIN)/python -m pytest $(ARGS)

# Lint, types (strict on the core), and the import layers (pyproject.toml).
check: $(STAMP)
	$(BIN)/ruff check gateway vad tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# The wheel a user installs, demo page included (tests/test_wheel.py checks it).
wheel: $(STAMP)
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir dist .

bench: $(STAMP)
	$(BIN)/python -m bench.streaming $(ARGS)

# python -m bench.soak: streams at capacity with faults; bench/results/soak.json
soak: $(STAMP)
	$(BIN)/python -m bench.soak $(ARGS)

# python -m bench.doors: each front door beside the native one; bench/results/doors.json
bench-doors: $(STAMP)
	$(BIN)/python -m bench.doors $(ARGS)

# python -m bench.calls: two-party 8 kHz calls against mono streams; bench/results/calls.json
bench-calls: $(STAMP)
	$(BIN)/python -m bench.calls $(ARGS)

bench-batch: $(STAMP)
	$(BIN)/python -m bench.batch --repeats 2 $(ARGS)

clean:
	rm -rf $(VENV) $(SDK_VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
