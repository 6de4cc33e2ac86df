# amiforge: the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint bench dist clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "amiforge needs Python 3.11 or newer; set PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

demo: $(VENV)/.installed
	$(BIN)/amiforge demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

# Four workers on two cores, one local cloud each (~3 s of CPU to start): the end-to-end
# tests spend much of their time in the stack's own waits (Step Functions Wait and Retry,
# builder time), which the extra workers fill. 2,056 tests: 253 to 290 s of pytest at
# -n 4, 288 s at -n 6. docs/performance.md, "The test suite".
test: lint
	$(BIN)/python -m pytest -n 4 --dist loadfile

# A wheel and an sdist in dist/: what CI jobs install (see examples/ci/).
dist: $(VENV)/.installed-dev
	rm -rf dist
	$(BIN)/python -m build --outdir dist .

bench: $(VENV)/.installed
	$(BIN)/python bench/results.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
