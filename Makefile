# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv; `make demo` installs what the tool needs to run, `make test` adds the
# dev extras (pytest, Playwright, import-linter). Every pip install is constrained by the
# lock of the running Python (requirements/lock-pyX.Y.txt); `make lock` upgrades it.

SHELL := /bin/bash
# Prefer python3.13 / python3.12 (mitmproxy 12); fall back to python3 >= 3.11 (mitmproxy 11.0.x).
# A candidate counts only if it actually runs (pyenv shims may exist without a version behind them).
PYTHON ?= $(shell for p in python3.13 python3.12 python3; do \
	if $$p -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1; then echo $$p; break; fi; done)
VENV := .venv
BIN := $(VENV)/bin
# One stamp per install set, so `make demo` then `make test` installs the dev extras.
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
STAMP_LAB := $(VENV)/.installed-lab
# The lock for the interpreter the venv runs (or will run), e.g. requirements/lock-py3.11.txt.
PY_MINOR := $(shell if [ -x $(BIN)/python ]; then p=$(BIN)/python; else p="$(PYTHON)"; fi; \
	test -n "$$p" && $$p -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
LOCK := requirements/lock-py$(PY_MINOR).txt
LOCK_DEPS := $(wildcard $(LOCK))
# pip install -c LOCK when the lock exists; otherwise unconstrained, with a warning.
CONSTRAINT = $(if $(LOCK_DEPS),-c $(LOCK),)
LOCK_VENV := .venv-lock
VENDOR := gwsreplay/sim/server/desktop/vendor/cometd

.PHONY: demo test venv venv-dev node vendor lab lock chromium clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "error: need python3 >= 3.11 on PATH"; exit 1; }
	@echo "Using $(PYTHON) ($$($(PYTHON) --version))"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

NO_LOCK_WARNING = test -n "$(LOCK_DEPS)" || echo "warning: no $(LOCK) for Python $(PY_MINOR): installing \
	the newest versions pyproject.toml allows (\`make lock\` records them)" >&2

$(STAMP_RUN): pyproject.toml $(LOCK_DEPS) | $(BIN)/python
	@$(NO_LOCK_WARNING)
	$(BIN)/pip install --quiet $(CONSTRAINT) -e .
	touch $(STAMP_RUN)

$(STAMP_DEV): pyproject.toml $(LOCK_DEPS) | $(BIN)/python
	@$(NO_LOCK_WARNING)
	$(BIN)/pip install --quiet $(CONSTRAINT) -e '.[dev]'
	touch $(STAMP_RUN) $(STAMP_DEV)

$(STAMP_LAB): pyproject.toml $(LOCK_DEPS) | $(BIN)/python
	@$(NO_LOCK_WARNING)
	$(BIN)/pip install --quiet $(CONSTRAINT) -e '.[lab]'
	touch $(STAMP_RUN) $(STAMP_LAB)

venv: $(STAMP_RUN)

venv-dev: $(STAMP_DEV)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch node_modules/.installed

node: node_modules/.installed

# Refresh the desktop's vendored CometD library (committed, shipped in the wheel) from the
# npm package package-lock.json pins; tests/test_wheel.py checks the copy is byte-identical.
vendor: node_modules/.installed
	rm -rf $(VENDOR)
	mkdir -p $(VENDOR)
	# the browser's files: the ES modules, the license, package.json (the version)
	cp node_modules/cometd/*.js node_modules/cometd/LICENSE node_modules/cometd/package.json $(VENDOR)/

# Debian's Chromium for the browser and report tests (no browser download); certutil
# (libnss3-tools) makes the NSS trust store of the HTTPS capture tests.
chromium:
	@command -v chromium >/dev/null 2>&1 && command -v certutil >/dev/null 2>&1 || { \
		echo "Installing Debian chromium and libnss3-tools..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium libnss3-tools >/dev/null; }

demo: venv
	$(BIN)/gwsreplay demo

test: venv-dev node chromium
	$(BIN)/python -m pytest

lab: $(STAMP_LAB)
	$(BIN)/jupyter lab notebooks/

# Upgrade the locked versions: the newest that pyproject.toml allows, resolved in a fresh venv
# for this Python, written to $(LOCK). Then `make test` installs them and checks them.
lock: | $(BIN)/python
	rm -rf $(LOCK_VENV)
	$(BIN)/python -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/pip install --quiet -e '.[dev,lab]'
	mkdir -p requirements
	{ echo "# Python $(PY_MINOR) versions for pip install -c (written by \`make lock\`; do not edit)"; \
	  $(LOCK_VENV)/bin/pip freeze --all --exclude-editable --exclude pip; } > $(LOCK)
	rm -rf $(LOCK_VENV)
	@echo "wrote $(LOCK); run \`make test\` to install and check it, then commit it"

clean:
	rm -rf $(VENV) $(LOCK_VENV) node_modules
