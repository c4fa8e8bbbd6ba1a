# cardflow: every target sets up what it needs (venv from the lock file, Kafka jars) and is
# idempotent: a second run reuses what the first fetched.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.lock pyproject.toml | sha256sum | cut -c1-12)

.PHONY: help venv kafka-jars demo test test-all lint fmt up down logs status lock clean bench

help:
	@echo "make demo      set up and run the local stack with a sample through the pipeline"
	@echo "make test      set up and run the test suite (real Kafka, SQLite and PostgreSQL)"
	@echo "make up/down   start/stop the local stack in the background; make logs, make status"
	@echo "make lint      ruff (lint + format check), mypy strict, import rules"
	@echo "make lock      re-resolve requirements.lock after changing pyproject.toml"

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

kafka-jars:
	@deploy/kafka/fetch.sh >/dev/null

# uv resolves the lock in a throwaway venv of its own: the project venv holds only the lock.
lock:
	@test -x .cardflow/lock-venv/bin/uv || { $(PYTHON) -m venv .cardflow/lock-venv && .cardflow/lock-venv/bin/pip install --quiet uv; }
	.cardflow/lock-venv/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes --extra dev pyproject.toml -o requirements.lock

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

fmt: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Regenerate contracts/schemas/ (JSON Schema of every registered model, topics.json, and the
# AsyncAPI document asyncapi.json).
.PHONY: schemas
schemas: venv
	$(PY) -m contracts.schema
	$(PY) -m contracts.asyncapi

test: venv kafka-jars lint
	$(PY) -m pytest

up: venv kafka-jars
	$(PY) deploy/local/stack.py up

down:
	@if [ -x $(PY) ]; then $(PY) deploy/local/stack.py down; else echo "nothing to stop"; fi

logs:
	$(PY) deploy/local/stack.py logs

status:
	$(PY) deploy/local/stack.py status

demo: venv kafka-jars
	$(PY) deploy/local/stack.py demo

# Pipeline benchmark (tests/perf/README.md): reports makespan vs ideal and vs sequential;
# never fails on the numbers, only when a run fails.
bench: venv kafka-jars
	$(PY) tests/perf/pipeline_bench.py

clean: down
	rm -rf .cardflow
