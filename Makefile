# Two commands matter: `make run` (the service, embedded defaults) and `make test` (everything CI runs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint typecheck pytest chromium bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/keybuzz demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# Four workers on CI's two cores: the suite mostly waits (PostgreSQL, subprocesses, simulated
# Amazon), so 4 finish in about half the time of 2; whole modules go to one worker (loadscope),
# so module fixtures start once. Each worker is a session of its own (tests/conftest.py).
# `make pytest PYTEST_WORKERS=0` runs in one process.
PYTEST_WORKERS ?= 4
pytest: $(STAMP) chromium
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadscope

# The Orders page's browser tests drive Debian's Chromium (never a downloaded browser); they
# fail, not skip, without it, so the test command installs it when it is missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python bench/bench_orders.py
	$(BIN)/python bench/bench_ui.py
	$(BIN)/python bench/bench_simulator.py
	$(BIN)/python bench/bench_amazon.py
	$(BIN)/python bench/bench_sync.py --orders 10000,100000 --tenants 0
	$(BIN)/python bench/bench_sync.py --orders 10000 --rate-scale 20 --naive-max 0 --changes 0 \
		--real-changes 0 --tenants 6 --tenant-orders 10000
	$(BIN)/python bench/bench_api.py
	$(BIN)/python bench/bench_ratelimit.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
