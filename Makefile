# Every command creates .venv when it is missing. See README.md.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTHON ?= python3

export DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/webhooks
export AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672/
export SCALE

.PHONY: venv sdk-snapshot run test migrate lint format clean prune soak bench api-key admin-key list-api-keys revoke-api-key cluster-test pg-failover-test

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

# The publisher SDK's generated parts (not kept in git): openapi-python-client's client from
# the document's snapshot, the method per operation, and the blocking forms (build_client.py).
SDK := client/publisher
SDK_BUILT := $(SDK)/webhooks_publisher/sync_client.py
$(SDK_BUILT): client/openapi.json $(SDK)/build_client.py $(SDK)/webhooks_publisher/async_base.py $(STAMP)
	$(PY) $(SDK)/build_client.py >/dev/null

venv: $(STAMP) $(SDK_BUILT)

# Rewrites client/openapi.json, the document both SDKs are generated from, from the services'
# models (after an API change; tests/test_sdk_snapshot.py fails until this is run).
sdk-snapshot: $(STAMP)
	$(PY) -c 'import json; from services.registration.openapi import openapi_document as d; print(json.dumps(d(), indent=2))' > client/openapi.json
	$(MAKE) venv

migrate: venv
	@$(PY) -m deploy.local.prereqs
	$(PY) -m services.common.migrate

# deploy/local/run.py runs deploy/local/Procfile and exits 0 after a clean Ctrl-C. It
# SIGKILLs its children 5 s after Ctrl-C, so drain within 4 s here.
# SCALE="dispatcher=3 upload=2 registration=2" runs replicas, each on its own port
# (deploy/local/scale.py), and the gateway balances over them.
run: venv
	@$(PY) -m deploy.local.prereqs --nginx
	$(PY) -m services.common.migrate
	@$(PY) -m deploy.gateway.render --runtime-dir run/gateway --log-dir logs >/dev/null
	NGINX_BIN="$$($(PY) -c 'from deploy.local.prereqs import find_nginx; print(find_nginx())')" \
	SHUTDOWN_GRACE_SECONDS=$${SHUTDOWN_GRACE_SECONDS:-4} \
	exec $(PY) -m deploy.local.run

# axe-core, pinned by tests/.axe/package-lock.json, for the console's accessibility audit.
AXE := tests/.axe/node_modules/axe-core/axe.min.js
$(AXE): tests/.axe/package.json tests/.axe/package-lock.json
	npm ci --prefix tests/.axe --no-audit --no-fund
	@touch $(AXE)

# The TypeScript SDK's openapi-fetch, openapi-typescript and tsc, pinned by
# client/typescript/package-lock.json: tests/test_typescript_sdk.py builds and runs the SDK,
# tests/test_generators.py runs the same openapi-typescript and tsc on the live document.
TS_SDK := client/typescript/node_modules/.bin/tsc
$(TS_SDK): client/typescript/package.json client/typescript/package-lock.json
	npm ci --prefix client/typescript --no-audit --no-fund
	@touch $(TS_SDK)

test: venv $(AXE) $(TS_SDK)
	@$(PY) -m deploy.local.prereqs --nginx
	$(PY) -m pytest $(PYTEST_ARGS)

# Removes uploads, their files and delivery history older than RETENTION_DAYS (default 30).
prune: venv
	$(PY) -m services.common.retention

# A new API key for user USER_ID, printed once as the last line (README, Authentication).
# EXPIRES_IN=30d (or 90s, 15m, 12h) makes it, or an admin key, expire.
api-key: venv
	@test -n "$(USER_ID)" || { echo 'usage: make api-key USER_ID=1' >&2; exit 2; }
	@$(PY) -m services.registration create-api-key --user-id '$(USER_ID)' \
		$(if $(EXPIRES_IN),--expires-in '$(EXPIRES_IN)')

# Prints a new admin key (acts for every user, manages event types) as the last line.
admin-key: venv
	@$(PY) -m services.registration create-api-key --admin \
		$(if $(EXPIRES_IN),--expires-in '$(EXPIRES_IN)')

# The keys not revoked: id, whose, created, last used, expiry; never the key itself.
list-api-keys: venv
	@$(PY) -m services.registration list-api-keys

# Revokes KEY, or the key with id ID: every service refuses it within a second (SECURITY.md).
revoke-api-key: venv
	@test -n "$(KEY)$(ID)" || { echo 'usage: make revoke-api-key KEY=whk_... (or ID=<id from make list-api-keys>)' >&2; exit 2; }
	@$(PY) -m services.registration revoke-api-key $(if $(ID),--id '$(ID)','$(KEY)')

# Throughput, latency, concurrency, isolation and memory; a table and bench/results/*.json.
bench: venv
	@$(PY) -m deploy.local.prereqs --nginx
	$(PY) -m bench.run $(BENCH_ARGS)

# Thousands of uploads while faults repeat (own database and vhost, removed after).
soak: venv
	@$(PY) -m deploy.local.prereqs --nginx
	$(PY) -m bench.soak $(SOAK_ARGS)

# Uploads while the leader of webhooks.dispatch stops in a three-node RabbitMQ cluster of its
# own (extra nodes of the installed rabbitmq-server; the machine's own node is not touched).
cluster-test: venv
	$(PY) -m bench.cluster $(CLUSTER_ARGS)

# Uploads and events while the PostgreSQL primary dies (-m immediate) and its synchronous
# standby is promoted: a pair of its own of the installed server, on its own ports and
# directories (deploy/local/postgres_pair.py); the machine's own server is not touched.
pg-failover-test: venv
	$(PY) -m bench.pg_failover $(PG_FAILOVER_ARGS)

# Spectral and Redocly, pinned by tests/.openapi-lint/package-lock.json, lint the OpenAPI
# document (rules and the findings left: tests/.openapi-lint, docs/openapi.md).
OPENAPI_LINT := tests/.openapi-lint/node_modules/.bin
$(OPENAPI_LINT)/spectral: tests/.openapi-lint/package.json tests/.openapi-lint/package-lock.json
	npm ci --prefix tests/.openapi-lint --no-audit --no-fund
	@touch $@

lint: venv $(OPENAPI_LINT)/spectral
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	@mkdir -p run
	$(PY) -c 'import json; from services.registration.openapi import openapi_document as d; print(json.dumps(d()))' > run/openapi.json
	$(OPENAPI_LINT)/spectral lint run/openapi.json --ruleset tests/.openapi-lint/.spectral.yaml --fail-severity warn --quiet
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true $(OPENAPI_LINT)/redocly lint run/openapi.json --config tests/.openapi-lint/redocly.yaml --format summary

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf run data/uploads .pytest_cache .mypy_cache .ruff_cache
