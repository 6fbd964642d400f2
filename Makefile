# Two commands matter: `make run` and `make test`. Both bootstrap everything they need.
SHELL := /bin/bash
PY ?= python3
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
VENV := .venv
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)

.PHONY: run install dev test lint fmt typecheck bench tracker chromium postgresql clean

$(CURDIR)/.tools/bin/uv:
	@# uv is the installer; fetch it into a private tools venv when the machine has none.
	$(PY) -m venv .tools || { echo "python3 -m venv failed: install python3-venv (apt-get install python3-venv)"; exit 1; }
	.tools/bin/pip install -q uv

# One .venv for both commands: `install` adds what serving needs and removes nothing
# (--inexact), so `make run` keeps the dev tools `make test` installed; `dev` installs the
# same packages plus the dev and clickhouse extras, so `make test` keeps everything `make run`
# needs and runs the ClickHouse store's tests on chdb (`make install` alone never adds chdb).
# --compile-bytecode: where PYTHONDONTWRITEBYTECODE is set (this workplace sets it) nothing
# writes .pyc files, and every process compiled what it imports (pandas alone: 2-3 s, 10 s
# and more with the cores busy, in every test's server start); compiled once here (~20 s).
install: $(UV)
	$(UV) sync --frozen --no-dev --inexact --compile-bytecode

dev: $(UV)
	$(UV) sync --frozen --extra dev --extra clickhouse --compile-bytecode

run: install
	$(VENV)/bin/avocet serve

lint: dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: dev
	$(VENV)/bin/mypy

chromium:
	@scripts/ensure-chromium

postgresql:
	@scripts/ensure-postgresql

test: dev chromium postgresql
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	@# Three workers on the two cores: most tests wait on real servers, browsers and sockets
	@# (2026-12-03, quiet machine: 11 min 6 s with -n 3, 13 min 36 s with -n 2); a file stays
	@# on one worker so its module fixtures (a browser, a live server) start once.
	$(VENV)/bin/pytest -q -n 3 --dist loadfile

bench: dev
	$(VENV)/bin/python bench/ingest.py
	$(VENV)/bin/python bench/query.py

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache
