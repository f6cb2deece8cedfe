# Two commands do all the set-up on a fresh machine:
#   make run    create .venv, install, start the server on the bundled default model
#   make test   create .venv, install, run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: install run test bench bench-batch clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,bench]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/stt-gateway serve $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench.streaming $(ARGS)

bench-batch: $(STAMP)
	$(BIN)/python -m bench.batch $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
