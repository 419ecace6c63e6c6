# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install tools lint typecheck unit integration e2e schema bench clean chaos

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/leadflow up

test: $(STAMP) tools lint typecheck
	$(BIN)/pytest -q

# From Debian: docker-compose validates docker-compose.yml without a Docker engine, and
# chromium runs the browser tests (Playwright never downloads a browser here). Where one
# cannot be installed, the tests that need it are skipped and say so.
DEBIAN_TOOLS := docker-compose:docker-compose chromium:chromium
tools:
	@for tool in $(DEBIAN_TOOLS); do command=$${tool%%:*}; package=$${tool##*:}; \
		command -v $$command >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& { apt-get install -y -qq $$package >/dev/null 2>&1 \
		|| { apt-get update -qq >/dev/null && apt-get install -y -qq $$package >/dev/null; }; }; } \
		|| echo "$$package not installed: the tests that need it will be skipped"; done

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q -m unit

integration: $(STAMP)
	$(BIN)/pytest -q -m integration

e2e: $(STAMP)
	$(BIN)/pytest -q -m e2e

# The full chaos suite (tests/chaos): ~20,000 interactions, several faults of each kind,
# compared with a fault-free run; the report goes to tests/artifacts/chaos-report.json.
chaos: $(STAMP)
	LEADFLOW_CHAOS=full $(BIN)/pytest -q -s -m chaos \
		tests/chaos/test_chaos.py::test_full_chaos_run_ends_as_the_fault_free_run

schema: $(STAMP)
	$(BIN)/leadflow schema

bench: $(STAMP)
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
