# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv and install everything the project needs.

SHELL := /bin/bash
# Prefer python3.13 / python3.12 (mitmproxy 12); fall back to python3 >= 3.11 (mitmproxy 11.0.x).
# A candidate counts only if it actually runs (pyenv shims may exist without a version behind them).
PYTHON ?= $(shell for p in python3.13 python3.12 python3; do \
	if $$p -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1; then echo $$p; break; fi; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv node lab chromium clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: need python3 >= 3.11 on PATH"; exit 1; }
	@echo "Using $(PYTHON) ($$($(PYTHON) --version))"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch node_modules/.installed

node: node_modules/.installed

# Debian's Chromium for the browser and report tests (no browser download).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian chromium..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

demo: venv
	$(BIN)/gwsreplay demo

test: venv node chromium
	$(BIN)/python -m pytest

lab: venv
	$(BIN)/pip install --quiet -e '.[lab]'
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf $(VENV) node_modules
