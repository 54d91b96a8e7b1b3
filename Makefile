# fedgate: `make demo` and `make test` set everything up on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo demo-servers test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fedgate demo

demo-servers: $(STAMP)
	$(BIN)/fedgate demo --backends postgres,mariadb

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check gateway adapters schema demo bench tests
	$(BIN)/ruff format --check gateway adapters schema demo bench tests

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) demo/data .pytest_cache .mypy_cache .ruff_cache
