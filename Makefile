# modelport — `make demo` and `make test` do all installation themselves.
# The virtual environment is keyed by the hash of the lock file: it is rebuilt only when the lock
# (or pyproject.toml) changes, so repeated runs start at once.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
LOCK := requirements/lock.txt
ENV_HASH := $(shell cat $(LOCK) pyproject.toml | sha256sum | cut -c1-16)
STAMP := $(VENV)/.env-$(ENV_HASH)
BIN := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: env demo test lint format bench lock clean

env: $(STAMP)

$(STAMP):
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

demo: env
	$(BIN)/modelport demo

test: env
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start || true
	@command -v chromium >/dev/null || (export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq chromium \
		|| (apt-get update -qq && apt-get install -y -qq chromium)) >/dev/null  # the report's browser test
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-feast

# Feast needs pandas<3, so its test runs in its own venv, keyed by the hash of its requirements
# (and pyproject.toml: modelport is installed into it editable, without extras).
FEAST_VENV := tests/feature_store/.venv
FEAST_REQ := tests/feature_store/requirements.txt
FEAST_HASH := $(shell cat $(FEAST_REQ) pyproject.toml | sha256sum | cut -c1-16)
FEAST_STAMP := $(FEAST_VENV)/.env-$(FEAST_HASH)
.PHONY: feast-env test-feast

feast-env: $(FEAST_STAMP)

$(FEAST_STAMP):
	rm -rf $(FEAST_VENV)
	$(PYTHON) -m venv $(FEAST_VENV)
	$(FEAST_VENV)/bin/pip install --quiet --upgrade pip
	$(FEAST_VENV)/bin/pip install --quiet -r $(FEAST_REQ) -e .
	touch $@

test-feast: feast-env
	$(FEAST_VENV)/bin/python -m pytest -q tests/feature_store

lint: env
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports  # the layer contracts in pyproject.toml [tool.importlinter]

format: env
	$(BIN)/ruff check --fix src tests benchmarks examples
	$(BIN)/ruff format src tests benchmarks

# bench_serving.py needs wrk (Debian package) and builds its own MLflow venv in benchmarks/.venv-mlflow.
bench: env
	command -v wrk >/dev/null || (apt-get install -y wrk || sudo apt-get install -y wrk)
	cd benchmarks && ../$(BIN)/python bench_inprocess.py && ../$(BIN)/python bench_compiled.py \
		&& ../$(BIN)/python bench_serving.py && ../$(BIN)/python bench_batch.py && ../$(BIN)/python bench_drift.py

# Re-resolve requirements/direct.txt into the lock (needs the package index).
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install --quiet -r requirements/direct.txt
	.lockenv/bin/pip freeze --exclude-editable | sed 's/^torch==\([0-9.]*\)+cpu/torch==\1/' > $(LOCK)
	rm -rf .lockenv

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
