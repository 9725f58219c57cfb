# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)

.PHONY: install run test drill bench lint clean

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

## Dashboard on http://127.0.0.1:5000 with the embedded PostgreSQL and the simulator.
run: install
	$(BIN)/python -m dashboard.devserver

## The whole suite, two workers, browser tests included where Chromium is installed.
test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

## Reliability drills at a larger scale, then a table of their figures.
drill: install
	rm -rf test-artifacts/drills
	DRILL_SCALE=$${DRILL_SCALE:-5} $(BIN)/python -m pytest -p no:cacheprovider -s -q tests/test_drills.py
	$(BIN)/python -m tests.drills

## 10,000 bots, production server config, concurrent clients: figures per route; then a
## 1,000-bot batch from preview to last item.
bench: install
	$(BIN)/python -m tests.benchmark $(BENCH_ARGS)
	$(BIN)/python -m tests.bench_batches

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
