# One entry point for people and CI. Every target sets itself up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
AWSCLI := .venv-awscli
LOCKER := .venv-lock
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# `make lock LOCK_OPTIONS=--upgrade` moves every pin to its newest release;
# `LOCK_OPTIONS="--upgrade-package boto3"` moves one.
LOCK_OPTIONS ?=
PIP_COMPILE = $(LOCKER)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links $(LOCK_OPTIONS)

.PHONY: setup system awscli lock test check lint demo sandbox bench soak clean

# The project's interpreter with its locked tools, all that infra/DEPLOY.md needs: no system
# packages, so it runs on macOS as well as on Debian.
setup: $(STAMP)

$(STAMP): requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	touch $(STAMP)

# HAProxy and shellcheck come from Debian: the tests run the real load-balancer side.
system:
	@command -v haproxy >/dev/null && command -v shellcheck >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy shellcheck >/dev/null; }
	@# The Debian package starts a system haproxy on :80; the project runs its own.
	@-$(SUDO) systemctl disable --now haproxy >/dev/null 2>&1 || $(SUDO) service haproxy stop >/dev/null 2>&1 || true

# AWS CLI v1 in a virtualenv of its own, for the test that follows infra/DEPLOY.md: the CLI's
# dependencies never decide the project's.
awscli: $(AWSCLI)/.installed

$(AWSCLI)/.installed: requirements-awscli.lock
	$(PYTHON) -m venv $(AWSCLI)
	$(AWSCLI)/bin/pip install --quiet --require-hashes -r requirements-awscli.lock
	touch $@

# Re-resolves the lock files after a change to requirements-dev.txt or requirements-awscli.txt,
# keeping every other pin. Run it on Python 3.11 on Linux, like the tests.
lock:
	$(PYTHON) -m venv $(LOCKER)
	$(LOCKER)/bin/pip install --quiet "pip-tools==7.7.0"
	$(PIP_COMPILE) --output-file requirements-dev.lock requirements-dev.txt
	$(PIP_COMPILE) --output-file requirements-awscli.lock requirements-awscli.txt

test: setup system awscli
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

check: lint test

demo: setup system
	$(BIN)/python -m standin.demo

# The demo's world left running for commands typed by hand; prints the environment to source.
sandbox: setup system
	$(BIN)/python -m standin.sandbox

bench: setup system
	$(BIN)/python -m bench

# Without pytest's log capture: it would keep every log line of the whole soak (one test of
# 5000 examples) in memory, gigabytes by the end.
soak: setup system
	LBTEST_SOAK=1 $(BIN)/pytest -q -p no:logging tests/model/test_model_based.py

clean:
	rm -rf $(VENV) $(AWSCLI) $(LOCKER) .pytest_cache .mypy_cache .ruff_cache
