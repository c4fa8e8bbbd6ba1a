# cardflow: every target sets up what it needs (venv from the lock file, Kafka jars) and is
# idempotent: a second run reuses what the first fetched.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.lock pyproject.toml | sha256sum | cut -c1-12)

# `make demo LLM=local` (or up): run llama.cpp's server with a local model beside the stack
# and point every stage at it; MODEL=path/to/model.gguf instead of the small packaged one.
ifeq ($(LLM),local)
export CARDFLOW_LOCAL_LLM := 1
endif
ifneq ($(MODEL),)
export CARDFLOW_LLAMA_MODEL := $(abspath $(MODEL))
endif

.PHONY: help venv kafka-jars llama chromium prometheus demo test test-faults test-all lint fmt up down logs status lock clean bench bench-quality bench-poll

help:
	@echo "make demo      set up and run the local stack with a sample through the pipeline"
	@echo "               (LLM=local: on a local model with llama.cpp; MODEL=x.gguf to choose it)"
	@echo "make test      set up and run the test suite (real Kafka, SQLite and PostgreSQL)"
	@echo "make test-faults  every fault-injection case (build/fault-report.md)"
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

# llama.cpp's llama-server (built once from the PyPI sdist, ~6 min on 2 cores) and Gemma 3
# 270M (from PyPI, sha256-checked), cached outside the checkout: the real-model tests use them.
llama: venv
	@$(PY) deploy/llama/fetch.py >/dev/null

# The browser tests (tests/web) drive Debian's Chromium with Playwright (Playwright's own
# browser download is not used). Installed with apt when missing: as root, or with
# passwordless sudo; otherwise stop with what to run.
CHROMIUM := /usr/bin/chromium
chromium:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" -eq 0 ]; then sudo=""; \
	  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	  else echo "error: $(CHROMIUM) is missing (the browser tests need it) and installing it needs root: sudo apt-get install -y chromium" >&2; exit 1; fi; \
	  command -v apt-get >/dev/null || { echo "error: $(CHROMIUM) is missing and there is no apt-get here: install Chromium so that $(CHROMIUM) exists" >&2; exit 1; }; \
	  echo "Installing Debian's chromium for the browser tests (apt-get)..."; \
	  mkdir -p .cardflow; \
	  { $$sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q chromium; } >.cardflow/chromium-install.log 2>&1 \
	    || { tail -n 20 .cardflow/chromium-install.log >&2; echo "error: apt-get could not install chromium (log: .cardflow/chromium-install.log)" >&2; exit 1; }; \
	  test -x $(CHROMIUM) || { echo "error: apt-get installed chromium but $(CHROMIUM) is not there" >&2; exit 1; }; \
	}

# promtool (tests/ops: rule checks and unit tests) and prometheus (the end-to-end test of the
# dashboards' queries) come from Debian's `prometheus` package: installed with apt when
# missing, as root or with passwordless sudo, like chromium. The package's own service is
# not wanted: the tests start Prometheus on a free port themselves.
PROMTOOL := /usr/bin/promtool
prometheus:
	@test -x $(PROMTOOL) || { \
	  if [ "$$(id -u)" -eq 0 ]; then sudo=""; \
	  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	  else echo "error: $(PROMTOOL) is missing (the monitoring tests need it) and installing it needs root: sudo apt-get install -y --no-install-recommends prometheus" >&2; exit 1; fi; \
	  command -v apt-get >/dev/null || { echo "error: $(PROMTOOL) is missing and there is no apt-get here: install Prometheus 2.x so that promtool and prometheus are on PATH" >&2; exit 1; }; \
	  echo "Installing Debian's prometheus (promtool) for the monitoring tests (apt-get)..."; \
	  mkdir -p .cardflow; \
	  { $$sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q --no-install-recommends prometheus; } >.cardflow/prometheus-install.log 2>&1 \
	    || { tail -n 20 .cardflow/prometheus-install.log >&2; echo "error: apt-get could not install prometheus (log: .cardflow/prometheus-install.log)" >&2; exit 1; }; \
	  test -x $(PROMTOOL) || { echo "error: apt-get installed prometheus but $(PROMTOOL) is not there" >&2; exit 1; }; \
	  $$sudo systemctl disable --now prometheus >/dev/null 2>&1 || true; \
	}

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

# The default set leaves out the slowest fault cases (each stage service killed in turn, the
# PostgreSQL variants): marked faults_full, still complete in kind. `make test-faults` runs
# every fault case and writes the table behind docs/reliability.md (build/fault-report.md).
test: venv kafka-jars llama chromium prometheus lint
	$(PY) -m pytest -m "not faults_full"

test-faults: venv kafka-jars
	$(PY) -m pytest tests/faults

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

# Poll benchmark (tests/perf/README.md): 10, 100 and 1,000 long-pollers of a live and of a
# finished pipeline run, with a probe of conditional GETs and /healthz. Reports, never fails
# on the numbers.
bench-poll: venv kafka-jars
	$(PY) tests/perf/poll_bench.py

# Backlog quality benchmark (tests/perf/README.md): the corpus's documents through the
# pipeline's stages, scored against their gold lists; the offline provider unless
# CARDFLOW_LLM_BASE_URL is set. Reports, never fails on the numbers.
bench-quality: venv
	$(PY) tests/perf/quality_bench.py

clean: down
	rm -rf .cardflow
