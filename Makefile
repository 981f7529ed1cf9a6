# The project's two commands: `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

SDK := clients/typescript
WEB := clients/web
NPM ?= npm

.PHONY: run test install migrate clean bench chaos web node chromium

$(STAMP): setup.cfg pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is needed (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
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

## The browser tests drive Debian's Chromium; installed here when missing (as root).
chromium:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] \
		&& { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; } \
		|| { echo "the browser tests need Chromium: apt-get install chromium"; exit 1; }

## Start web, worker, beat and Flower (and the embedded Redis when REDIS_URL is unset).
run: install migrate web
	$(BIN)/assistant run

## The whole suite, on PostgreSQL + Redis and on the embedded default.
test: install web chromium
	$(BIN)/python -m tests.preflight
	$(BIN)/python -m pytest $(PYTEST_ARGS)

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

clean:
	rm -rf $(VENV) var *.egg-info $(SDK)/node_modules $(SDK)/dist $(WEB)/node_modules $(WEB)/dist
