# Payouts service. `make` lists the targets. Everything runs against local PostgreSQL and RabbitMQ by default
# (see README: Configuration); `make up` runs the whole stack in Docker instead.

SHELL := /bin/bash
.DEFAULT_GOAL := help
RUN := node --import tsx src/main.ts
NAME ?=
ROLE ?= client

.PHONY: help install up down logs migrate run worker relay sweeper dev build test test-unit test-integration \
        lint fmt typecheck deps-check spec-lint compose-check diagram diagram-check client client-check key key-revoke key-list \
        dlq-list dlq-replay screenshots shell psql bench bench-drain

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

install: ## Install dependencies (npm ci)
	npm ci

up: ## Run the whole stack in Docker (postgres, rabbitmq, migrate, api, worker, relay, sweeper, prometheus, grafana)
	docker compose up -d --build

down: ## Stop the Docker stack
	docker compose down

logs: ## Follow the Docker stack's logs
	docker compose logs -f

migrate: ## Create the database if missing and apply migrations (also declares the RabbitMQ topology)
	$(RUN) migrate

run: ## Run the HTTP API
	$(RUN) api

worker: ## Run a worker (consumes payouts.process); /metrics on METRICS_PORT (9101)
	METRICS_PORT=$${METRICS_PORT:-9101} $(RUN) worker

relay: ## Run an outbox relay; /metrics on METRICS_PORT (9102)
	METRICS_PORT=$${METRICS_PORT:-9102} $(RUN) relay

sweeper: ## Run the sweeper (re-drives stuck payouts, removes expired idempotency keys); /metrics on METRICS_PORT (9103)
	METRICS_PORT=$${METRICS_PORT:-9103} $(RUN) sweeper

dev: ## Migrate, print a development key, run api + relay + worker + sweeper in one process
	$(RUN) dev

build: ## Compile to dist/
	npx tsc -p tsconfig.build.json

test: lint typecheck deps-check spec-lint compose-check diagram-check client-check test-unit test-integration ## The one gate: lint, typecheck, folder layering, spec lint, compose check, diagram and client up to date, unit and integration tests

test-unit: ## Unit tests (no I/O)
	npx mocha

test-integration: ## Integration tests against real PostgreSQL and RabbitMQ
	npx mocha --config .mocharc.integration.json 'test/integration/**/*.test.ts'

lint: ## ESLint and Prettier check
	npx eslint .
	npx prettier --check .

fmt: ## Format and fix lint
	npx prettier --write .
	npx eslint --fix .

typecheck: ## TypeScript, strict, no emit
	npx tsc --noEmit

deps-check: ## Fail when an import breaks the folder layering (dependency-cruiser)
	@set -o pipefail; npx depcruise src --config .dependency-cruiser.cjs --output-type err | sed '/^$$/d'

spec-lint: ## Lint openapi.yaml with Redocly
	npx redocly lint openapi.yaml

compose-check: ## Parse docker-compose.yml (Debian's docker-compose; no engine needed)
	docker-compose -f docker-compose.yml config -q

diagram: ## Regenerate the state diagram in README.md and docs/ from the machine
	node --import tsx scripts/diagram.ts --write

diagram-check: ## Fail when the diagram in README.md is out of date
	node --import tsx scripts/diagram.ts --check

client: ## Generate the typed API client's types from openapi.yaml
	npx openapi-typescript openapi.yaml -o src/client/schema.d.ts
	npx prettier --write src/client/schema.d.ts

client-check: ## Fail when src/client/schema.d.ts is stale (run make client)
	@tmp=$$(mktemp --suffix=.d.ts); npx openapi-typescript openapi.yaml -o $$tmp >/dev/null && \
	  npx prettier --stdin-filepath src/client/schema.d.ts < $$tmp | diff -q - src/client/schema.d.ts >/dev/null; \
	  s=$$?; rm -f $$tmp; [ $$s -eq 0 ] || { echo 'src/client/schema.d.ts is stale: run make client' >&2; exit 1; }; \
	  echo 'typed client up to date'

key: ## Issue an API key: make key NAME=acme ROLE=client|operator (the key is the last line)
	@test -n "$(NAME)" || (echo "usage: make key NAME=<client> ROLE=client|operator" >&2; exit 2)
	@$(RUN) key "$(NAME)" "$(ROLE)"

key-revoke: ## Revoke every key of a client: make key-revoke NAME=acme
	@test -n "$(NAME)" || (echo "usage: make key-revoke NAME=<client>" >&2; exit 2)
	@$(RUN) key-revoke "$(NAME)"

key-list: ## List keys (names, roles, created, revoked; never the key)
	@$(RUN) key-list

dlq-list: ## List dead-lettered messages with their reasons
	@$(RUN) dlq-list

dlq-replay: ## Move dead-lettered messages back to the work queue
	@$(RUN) dlq-replay

screenshots: ## Screenshot Swagger UI and Redoc into docs/ (needs Debian's chromium)
	node --import tsx scripts/screenshots.ts

shell: ## A Node REPL with config, db and service loaded
	node --import tsx scripts/shell.ts

psql: ## psql on the configured database
	psql "$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/payouts}"

bench: build ## Create throughput and latency vs the bare floor, in one run
	node --import tsx bench/create.ts

bench-drain: build ## End-to-end drain rate vs pgbench's transition floor, in one run
	node --import tsx bench/drain.ts
