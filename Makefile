# Every target bootstraps what it needs: a fresh clone only needs python3 (3.11+) and network access to PyPI.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help demo sandbox test lint typecheck unit integration lock clean

help:
	@echo "make demo     run the real Lambda handler against the local sandbox (AWS + Azure stand-ins)"
	@echo "make test     lint, type-check and every test"
	@echo "make sandbox  start the sandbox alone and print the environment that points keyreport at it"
	@echo "make lock     re-resolve the pinned lock files from pyproject.toml"

$(STAMP): requirements-dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

demo: $(STAMP)
	$(BIN)/python -m sandbox.demo

sandbox: $(STAMP)
	$(BIN)/python -m sandbox

lint: $(STAMP)
	$(BIN)/ruff check lambda sandbox tests
	$(BIN)/ruff format --check lambda sandbox tests

typecheck: $(STAMP)
	$(BIN)/mypy lambda/keyreport sandbox

test: lint typecheck $(STAMP)
	$(BIN)/pytest -q -n 2

lock: $(STAMP)
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements-dev.lock
	$(BIN)/uv pip compile pyproject.toml --python-version 3.13 --python-platform aarch64-manylinux_2_28 \
		--generate-hashes -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
