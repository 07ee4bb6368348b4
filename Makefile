# Set-up and entry points. Each target installs what it needs into .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Torch is not pinned by the package (users bring theirs); pip takes the newest allowed build.
EXTRAS ?= test,hrnet

.PHONY: install quickstart test lint format clean

$(BIN)/instancehmr: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

install: $(BIN)/instancehmr

quickstart: install
	$(BIN)/instancehmr train quickstart

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
