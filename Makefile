# idp: `make run` serves the demo on http://127.0.0.1:8000, `make test` runs the suite.
# Both set themselves up on a fresh machine (virtualenv, packages); `make run` applies the
# migrations too (the tests build their own databases).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2
SCALE ?= 10k

.DEFAULT_GOAL := help
.PHONY: help run test lint migrate demo worker browser-deps clean bench bench-deps bench-instructions bench-buffers

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-20s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

migrate: $(STAMP) ## Apply the database migrations (SQLite under instance/ unless IDP_DATABASE_URL)
	$(BIN)/idp db upgrade

demo: migrate ## Load the demo data and print it
	$(BIN)/idp demo

run: export IDP_ISSUER ?= http://$(HOST):$(PORT)
run: migrate ## Serve the demo on http://127.0.0.1:8000 with gunicorn
	@$(BIN)/idp demo
	@echo ""
	@echo "Serving on http://$(HOST):$(PORT)"
	@echo "  start here http://$(HOST):$(PORT)/demo  (log in to each hub as its frontend would)"
	@echo "  support    http://$(HOST):$(PORT)/support/"
	@echo "  discovery  http://$(HOST):$(PORT)/.well-known/openid-configuration"
	@echo "  OpenAPI    http://$(HOST):$(PORT)/openapi.json"
	@echo "  health     http://$(HOST):$(PORT)/readyz"
	@echo "  (the outbox worker runs beside it: webhooks reach /demo/webhooks, emails are logged)"
	$(BIN)/idp worker & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/gunicorn --workers $(WORKERS) --bind $(HOST):$(PORT) --access-logfile - wsgi:app

worker: migrate ## Deliver outbox messages (email, webhooks) until stopped
	$(BIN)/idp worker

browser-deps: ## Install Debian's chromium for the browser tests when missing (needs root)
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium for the browser tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "could not install chromium: browser tests will be skipped"; \
	else echo "chromium missing and not root: browser tests will be skipped"; fi

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check idp policies tests
	$(BIN)/ruff format --check idp policies tests

test: $(STAMP) browser-deps ## Run the whole suite (PostgreSQL/Redis too when IDP_TEST_* are set)
	$(BIN)/ruff check idp policies tests
	$(BIN)/pytest

# $(call debian_tool,PACKAGE,WHAT FOR): install a Debian package whose command is missing.
define debian_tool
	@if command -v $(1) >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing $(1) $(2)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null; \
	else echo "$(1) is missing and we are not root: apt-get install $(1)" >&2; exit 1; fi
endef

bench-deps: ## Install Debian's wrk (the load generator) when missing (needs root)
	$(call debian_tool,wrk,for the benchmark)

bench: $(STAMP) bench-deps ## Benchmark under gunicorn: make bench [SCALE=10k|100k|1m] (PostgreSQL when reachable)
	$(BIN)/python -m bench.run --scale $(SCALE) $(BENCH_ARGS)

bench-instructions: $(STAMP) ## Instructions per request of the hot paths, under callgrind: make bench-instructions [SCALE=10k]
	$(call debian_tool,valgrind,to count instructions)
	$(BIN)/python -m bench.instructions --scale $(SCALE) $(BENCH_ARGS)

bench-buffers: $(STAMP) ## Pages the hot paths read from outside PostgreSQL's buffers: make bench-buffers SCALE=1m
	$(BIN)/python -m bench.buffers --scale $(SCALE) $(BENCH_ARGS)

clean: ## Remove the virtualenv and local state
	rm -rf $(VENV) instance .pytest_cache
