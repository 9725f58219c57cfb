# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# One stamp per requirements file's checksum: editing a file reinstalls, nothing else does.
RUNTIME_STAMP := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)
DEV_STAMP := $(VENV)/.installed-dev-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
# axe-core (npm) for the accessibility tests; tests/test_browser_a11y.py checks this version.
AXE_VERSION := 4.14.1
AXE := node_modules/axe-core/.installed-$(AXE_VERSION)

.PHONY: install install-dev run test drill bench lint clean

$(RUNTIME_STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-[0-9]* && touch $(RUNTIME_STAMP)

$(DEV_STAMP): $(RUNTIME_STAMP) requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-dev-* && touch $(DEV_STAMP)

$(AXE):
	npm install --prefix . --no-save --no-audit --no-fund --no-package-lock axe-core@$(AXE_VERSION)
	touch $(AXE)

## What the dashboard needs to run, and nothing else.
install: $(RUNTIME_STAMP)

## Plus the test tools and axe-core.
install-dev: $(DEV_STAMP) $(AXE)

## Dashboard on http://127.0.0.1:5000 with the embedded PostgreSQL and the simulator.
run: install
	$(BIN)/python -m dashboard.devserver

## The whole suite, two workers, browser tests included where Chromium is installed.
test: install-dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

## Reliability drills at a larger scale, then a table of their figures.
drill: install-dev
	rm -rf test-artifacts/drills
	DRILL_SCALE=$${DRILL_SCALE:-5} $(BIN)/python -m pytest -p no:cacheprovider -s -q tests/test_drills.py
	$(BIN)/python -m tests.drills

## 10,000 bots, production server config, concurrent clients: figures per route; then a
## 1,000-bot batch from preview to last item; alerts; 20 Hummingbot servers x 500 bots.
bench: install-dev
	$(BIN)/python -m tests.benchmark $(BENCH_ARGS)
	$(BIN)/python -m tests.bench_batches
	$(BIN)/python -m tests.bench_alerts
	$(BIN)/python -m tests.bench_servers

lint: install-dev
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache test-artifacts
