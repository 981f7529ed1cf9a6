# The project's two commands: `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The lock files (pip-tools, with hashes): main.txt is what the image ships, test.txt the
# same pins plus the test tools. `make lock` makes them from pyproject.toml.
LOCK := requirements/main.txt requirements/test.txt
# Resolved against PyPI alone, whatever index or wheel folder this machine's pip is set to use.
LOCK_ENV := PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= PIP_CONSTRAINT= PIP_EXTRA_INDEX_URL=
PIP_COMPILE := $(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe \
	--no-emit-index-url --no-emit-find-links

SDK := clients/typescript
WEB := clients/web
NPM ?= npm

.PHONY: run test test-fast lint install migrate clean bench chaos lock audit web node

$(STAMP): setup.cfg pyproject.toml $(LOCK)
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is needed (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/test.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/assistant db upgrade

# -- the clients: npm ci from the committed lock files, builds only when sources changed ----

node:
	@command -v $(NPM) >/dev/null || { echo "the clients need Node.js 20 and npm (https://nodejs.org)"; exit 1; }

$(SDK)/node_modules/.installed: $(SDK)/package.json $(SDK)/package-lock.json | node
	cd $(SDK) && $(NPM) ci --no-audit --no-fund
	touch $@

$(SDK)/dist/index.js: $(SDK)/node_modules/.installed $(SDK)/tsconfig.json $(wildcard $(SDK)/src/*.ts)
	cd $(SDK) && $(NPM) run build
	touch $@

$(WEB)/node_modules/.installed: $(WEB)/package.json $(WEB)/package-lock.json $(SDK)/node_modules/.installed
	cd $(WEB) && $(NPM) ci --no-audit --no-fund
	touch $@

$(WEB)/dist/index.html: $(WEB)/node_modules/.installed $(SDK)/dist/index.js $(WEB)/index.html $(WEB)/vite.config.js \
		$(shell find $(WEB)/src $(WEB)/public -type f 2>/dev/null)
	cd $(WEB) && $(NPM) run build
	touch $@

## Build the SDK and the web client (make run serves it at /app/).
web: $(WEB)/dist/index.html

## Start web, worker, beat and Flower (and the embedded Redis when REDIS_URL is unset).
run: install migrate web
	$(BIN)/assistant run

## The checks that read the source: ruff (lint and import order) and the layer contracts
## (import-linter: api, workers and scheduler independent; shared imports none of them).
lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

# Where test-fast points every server: a port nothing listens on, so a test that would need
# PostgreSQL or Redis fails there instead of passing by luck.
CLOSED := 127.0.0.1:1
NO_SERVERS := DATABASE_URL=postgresql://nobody@$(CLOSED)/closed REDIS_URL=redis://$(CLOSED)/0 \
	TEST_DATABASE_URL=postgresql://nobody@$(CLOSED)/closed TEST_REDIS_URL=redis://$(CLOSED)/0

## The tests marked `fast`: no PostgreSQL, no Redis, no worker (both unreachable), in seconds.
test-fast: lint
	$(NO_SERVERS) $(BIN)/python -m pytest -m fast -p no:cacheprovider $(PYTEST_ARGS)

# The tests after the fast ones spend most of their time waiting on processes, servers and
# clocks: they run in TEST_PROCESSES pytest-xdist processes, a file at a time (module
# fixtures stay shared), each with its own database, Redis numbers and data directory
# (tests/conftest.py). At most 4 beside the default Redis number 10; 0 runs them in this one.
TEST_PROCESSES ?= 2

## The whole suite, on PostgreSQL + Redis and on the embedded default: first the lint and the
## fast tests with no server reachable (so CI proves they need none), then everything else.
## Debian packages the checks need (docker-compose, nginx, chromium, pgbackrest, exporters) are
## installed first when missing and we are root (.ci/system-packages).
test: install web test-fast
	bash .ci/system-packages
	$(BIN)/python -m tests.preflight
	$(BIN)/python -m pytest -m "not fast" -n $(TEST_PROCESSES) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

## Speed, measured against raw Celery and a bare endpoint in the same run (needs wrk).
## BENCH_ARGS: e.g. --profile (py-spy), --only http, --rounds 5.
bench: install
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; } \
		|| { echo "make bench needs wrk: apt-get install wrk"; exit 1; }
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench.run $(BENCH_ARGS)

## The full fault suite on throwaway PostgreSQL and Redis servers.
chaos: install
	$(BIN)/python -m bench.chaos

## Regenerate the lock files from pyproject.toml (after changing a dependency there).
lock: install
	$(BIN)/python -m pip install --quiet 'pip-tools>=7.4'
	$(LOCK_ENV) $(PIP_COMPILE) --output-file requirements/main.txt pyproject.toml
	$(LOCK_ENV) $(PIP_COMPILE) --extra test --constraint requirements/main.txt --output-file requirements/test.txt pyproject.toml

## Known vulnerabilities in the locked versions (pip-audit; needs PyPI's JSON API). Not part
## of `make test`: a vulnerability published tomorrow must not turn today's CI red.
## --strict: a package it could not look up fails the audit instead of passing unchecked.
audit: install
	$(BIN)/python -m pip install --quiet 'pip-audit>=2.7'
	$(BIN)/pip-audit --strict --disable-pip --require-hashes -r requirements/main.txt -r requirements/test.txt

clean:
	rm -rf $(VENV) var *.egg-info $(SDK)/node_modules $(SDK)/dist $(WEB)/node_modules $(WEB)/dist
