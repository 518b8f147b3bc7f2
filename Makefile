# One entry point for people and CI. Every target sets itself up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system test check lint demo sandbox bench soak clean

setup: $(STAMP) system

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip<26.3"
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# HAProxy and shellcheck come from Debian: the tests run the real load-balancer side.
system:
	@command -v haproxy >/dev/null && command -v shellcheck >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy shellcheck >/dev/null; }
	@# The Debian package starts a system haproxy on :80; the project runs its own.
	@-$(SUDO) systemctl disable --now haproxy >/dev/null 2>&1 || $(SUDO) service haproxy stop >/dev/null 2>&1 || true

test: setup
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

check: lint test

demo: setup
	$(BIN)/python -m standin.demo

# The demo's world left running for commands typed by hand; prints the environment to source.
sandbox: setup
	$(BIN)/python -m standin.sandbox

bench: setup
	$(BIN)/python -m bench

# Without pytest's log capture: it would keep every log line of the whole soak (one test of
# 5000 examples) in memory, gigabytes by the end.
soak: setup
	LBTEST_SOAK=1 $(BIN)/pytest -q -p no:logging tests/model/test_model_based.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
