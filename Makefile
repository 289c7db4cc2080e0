# Two commands: `make run` and `make test`. Everything else is set up on the way.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SRC := $(wildcard app tests bench)

.PHONY: run test test-reliability postman postman-examples lint imports typecheck pytest bench bench-search bench-bundles bench-summary bench-audit bench-feed bench-export bench-write-cost bench-notify bench-reconcile openapi settings-table migrate clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/safeguard serve

migrate: $(STAMP)
	$(BIN)/safeguard migrate

test: lint imports typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check $(SRC)
	$(BIN)/ruff format --check $(SRC)

imports: $(STAMP)
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

# The reliability suite (tests/reliability, left out of `make test`): the real server under
# kill -9, a database restart, slow clients, memory-hungry requests and schemathesis.
# QUICK=1 runs CI's bounded form (a few minutes); without it, the full one.
test-reliability: $(STAMP)
	SAFEGUARD_RELIABILITY=$(if $(QUICK),quick,full) $(BIN)/pytest tests/reliability

# The Postman collection (openapi/), one folder per user journey, run with newman against a
# server of its own on a fresh SQLite database (openapi/postman/run.sh); newman is pinned in
# openapi/postman/package-lock.json and installed there from the npm registry.
# postman-examples runs it and stores each response as its request's saved example.
POSTMAN := openapi/postman
NEWMAN_STAMP := $(POSTMAN)/node_modules/.installed

postman: $(STAMP) $(NEWMAN_STAMP)
	$(POSTMAN)/run.sh

postman-examples: $(STAMP) $(NEWMAN_STAMP)
	$(POSTMAN)/run.sh --examples

$(NEWMAN_STAMP): $(POSTMAN)/package.json $(POSTMAN)/package-lock.json
	npm ci --prefix $(POSTMAN) --no-audit --no-fund
	touch $@

bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || apt-get install -y -qq wrk >/dev/null 2>&1 || \
		echo "wrk is not installed: the bench uses its own asyncio load generator"
	$(BIN)/python -m bench.run

bench-search: $(STAMP)
	$(BIN)/python -m bench.search_volume

bench-bundles: $(STAMP)
	$(BIN)/python -m bench.bundles

bench-summary: $(STAMP)
	$(BIN)/python -m bench.summary

bench-audit: $(STAMP)
	$(BIN)/python -m bench.audit_chain

bench-feed: $(STAMP)
	$(BIN)/python -m bench.feed

bench-export: $(STAMP)
	$(BIN)/python -m bench.export

bench-write-cost: $(STAMP)
	$(BIN)/python -m bench.write_cost

bench-notify: $(STAMP)
	$(BIN)/python -m bench.notify

bench-reconcile: $(STAMP)
	$(BIN)/python -m bench.reconcile

openapi: $(STAMP)
	$(BIN)/safeguard openapi > openapi/openapi.json

settings-table: $(STAMP)
	$(BIN)/safeguard settings --readme README.md

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache $(POSTMAN)/node_modules
